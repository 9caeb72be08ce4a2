"""console.fields.RowJSONField: bulk writes keep documents exact, one parameter per value."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account
from ingest.models import RuleState

# Quotes, backslashes, braces, NUL-free control characters and non-ASCII: what attacker-controlled
# strings (user agents, request parameters) bring into rule state and baselines.
DOCUMENTS = [
    {"ua": 'curl/8 "quoted" \\ back\\slash', "n": 1},
    {"list": ["{", "}", ",", "\t\n", "é中🙂"], "nested": {"a": [1, 2.5, None, True]}},
    ["a", "b"],
    "plain string",
]


@pytest.mark.django_db
def test_bulk_upsert_round_trips_documents_without_an_array_parameter():
    account = Account.objects.create(aws_account_id="111122223333", name="a")
    rows = [RuleState(account=account, region="us-east-1", rule="r", key=f"k{i}", value=doc)
            for i, doc in enumerate(DOCUMENTS)]
    with CaptureQueriesContext(connection) as queries:
        RuleState.objects.bulk_create(rows, update_conflicts=True, unique_fields=["account", "region", "rule", "key"],
                                      update_fields=["value", "updated_at"])
    insert = next(q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT"))
    assert "UNNEST" not in insert.upper()  # Django's jsonb[] path escapes each document in Python
    stored = dict(RuleState.objects.filter(account=account).values_list("key", "value"))
    assert stored == {f"k{i}": doc for i, doc in enumerate(DOCUMENTS)}
    # The upsert path: the same keys again replace the documents.
    rows = [RuleState(account=account, region="us-east-1", rule="r", key=f"k{i}", value={"v": i})
            for i in range(len(DOCUMENTS))]
    RuleState.objects.bulk_create(rows, update_conflicts=True, unique_fields=["account", "region", "rule", "key"],
                                  update_fields=["value", "updated_at"])
    assert sorted(RuleState.objects.filter(account=account).values_list("value", flat=True),
                  key=lambda v: v["v"]) == [{"v": i} for i in range(len(DOCUMENTS))]
