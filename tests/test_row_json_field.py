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


@pytest.mark.django_db
def test_documents_round_trip_through_the_orm_and_key_lookups():
    """msgspec writes and reads the documents (the standard library's json the integers past 64
    bits), alike on every database: sets as arrays, and what JSON cannot hold refused."""
    account = Account.objects.create(aws_account_id="111122223333", name="a")
    documents = [*DOCUMENTS, {"big": 2**70, "neg": -(2**65), "float": 0.1}, {}, [], 0, False]
    for i, doc in enumerate(documents):
        RuleState.objects.create(account=account, region="us-east-1", rule="r", key=f"k{i}", value=doc)
    stored = dict(RuleState.objects.filter(account=account).values_list("key", "value"))
    assert stored == {f"k{i}": doc for i, doc in enumerate(documents)}
    assert RuleState.objects.get(account=account, value__ua__startswith="curl/8").key == "k0"
    assert list(RuleState.objects.filter(account=account, key="k1").values_list("value__nested__a", flat=True)) == [
        [1, 2.5, None, True]]
    RuleState.objects.create(account=account, region="us-east-1", rule="r", key="set", value={"s": {1, 2}})
    assert RuleState.objects.get(account=account, key="set").value == {"s": [1, 2]}
    with pytest.raises(TypeError):
        RuleState.objects.create(account=account, region="us-east-1", rule="r", key="object", value={"o": object()})
