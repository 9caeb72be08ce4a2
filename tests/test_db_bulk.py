"""console.db: generated bulk statements, numbered for PostgreSQL and run with their values as parameters."""

import pytest

from accounts.models import Account
from console.db import numbered, upsert
from ingest.models import RuleState
from ingest.state import DatabaseStateStore
from tests.test_row_json_field import DOCUMENTS


def test_numbered_placeholders_in_order():
    assert numbered("INSERT INTO t (a, b) VALUES (%s, CAST(%s AS jsonb)), (%s, %s)") == (
        "INSERT INTO t (a, b) VALUES ($1, CAST($2 AS jsonb)), ($3, $4)")
    assert numbered("SELECT 1") == "SELECT 1"


@pytest.mark.parametrize("sql", ["SELECT %s LIKE 'a%'", "SELECT %(name)s", "SELECT %s %% 2"])
def test_numbered_refuses_any_other_percent_sign(sql):
    with pytest.raises(ValueError, match="percent"):
        numbered(sql)


@pytest.mark.django_db
def test_upsert_round_trips_hostile_documents_and_returns_rows():
    account = Account.objects.create(aws_account_id="111122223333", name="a")
    # Key text an attacker could choose: quotes, a placeholder-like sequence, SQL.
    keys = [f"k{i}'); DROP TABLE ingest_rulestate; -- $1 ?" for i in range(len(DOCUMENTS))]
    rows = [RuleState(account=account, region="us-east-1", rule="r", key=key, value=doc)
            for key, doc in zip(keys, DOCUMENTS, strict=True)]
    returned = upsert(RuleState, rows, conflict=["account", "region", "rule", "key"],
                      update="{value} = EXCLUDED.{value}", returning="{key}")
    assert sorted(key for (key,) in returned) == sorted(keys)
    assert dict(RuleState.objects.filter(account=account).values_list("key", "value")) == dict(
        zip(keys, DOCUMENTS, strict=True))


@pytest.mark.django_db
def test_rule_state_flush_updates_in_place():
    account = Account.objects.create(aws_account_id="111122223333", name="a")
    store = DatabaseStateStore(account_id=account.id, region="us-east-1")
    store.put("r", "key", {"n": 1})
    store.flush()
    store.flush()  # nothing dirty: no statement, no error
    again = DatabaseStateStore(account_id=account.id, region="us-east-1")
    assert again.get("r", ["key"]) == {"key": {"n": 1}}
    again.put("r", "key", {"n": 2})
    again.flush()
    assert list(RuleState.objects.values_list("value", flat=True)) == [{"n": 2}]
