"""The one criteria engine: ORM compilation and in-memory evaluation agree, finding by finding."""

from __future__ import annotations

from datetime import timedelta

import pytest

from findings import criteria as fc
from findings.models import Finding
from tests.findings.util import IAM_TOR, MALICIOUS_IP, PORT_PROBE, SSH_BRUTE, T0, make_finding

CASES = [
    {"type": {"Equals": [PORT_PROBE]}},
    {"type": {"NotEquals": [PORT_PROBE, SSH_BRUTE]}},
    {"severity": {"Equals": ["7", "8"]}},
    {"severity": {"GreaterThanOrEqual": 5, "LessThan": 8}},
    {"severity": {"Gt": 2}},
    {"resource.instanceDetails.instanceId": {"Equals": ["i-0001"]}},
    {"service.action.networkConnectionAction.remoteIpDetails.ipAddressV4": {"Equals": ["203.0.113.9"]}},
    {"service.additionalInfo.threatListName": {"Equals": ["Scanners"]}},
    {"updatedAt": {"GreaterThan": int((T0 + timedelta(hours=1)).timestamp() * 1000)}},
    {"service.archived": {"Equals": ["false"]}},
    {"type": {"Matches": ["UnauthorizedAccess:*"]}},
    {"type": {"NotMatches": ["*SSH*"]}, "region": {"Equals": ["eu-west-1"]}},
    {"resource.instanceDetails.instanceId": {"Matches": ["i-000?"]}},
    {"resource.accessKeyDetails.accessKeyId": {"Equals": ["AKIAEXAMPLE"]}},
    {"accountId": {"Equals": ["100000000001"]}, "service.count": {"GreaterThanOrEqual": 1}},
]


@pytest.fixture
def corpus(factory):
    account = factory.account(aws_account_id="100000000001")
    other = factory.account(aws_account_id="100000000002", region="eu-west-1")
    rows = [
        make_finding(account, finding_type=PORT_PROBE, severity=2.0, instance="i-0001", at=T0),
        make_finding(account, finding_type=SSH_BRUTE, severity=8.0, instance="i-0002", at=T0 + timedelta(hours=2)),
        make_finding(account, finding_type=MALICIOUS_IP, severity=7.5, ip="203.0.113.9", threat_list="Scanners",
                     at=T0 + timedelta(hours=3)),
        make_finding(other, finding_type=IAM_TOR, severity=5.0, access_key="AKIAEXAMPLE", region="eu-west-1",
                     at=T0 + timedelta(hours=4)),
        make_finding(other, finding_type=SSH_BRUTE, severity=5.5, instance="i-0009", region="eu-west-1",
                     at=T0 + timedelta(hours=5)),
    ]
    Finding.objects.filter(pk=rows[4].pk).update(archived=True)
    return rows


@pytest.mark.parametrize("criterion", CASES)
def test_orm_and_in_memory_back_ends_agree(corpus, criterion):
    criteria = {"Criterion": criterion}
    in_db = set(Finding.objects.filter(fc.criteria_q(criteria, allow_matches=True)).values_list("pk", flat=True))
    in_memory = {f.pk for f in Finding.objects.select_related("account") if fc.criteria_match(criteria, fc.finding_values(f))}
    assert in_db == in_memory
    assert 0 < len(in_db) < len(corpus) or criterion == {"service.count": {"GreaterThanOrEqual": 1}}


def test_severity_equals_matches_whole_levels(corpus):
    q = fc.criteria_q({"Criterion": {"severity": {"Equals": ["7"]}}})
    assert list(Finding.objects.filter(q).values_list("severity", flat=True)) == [7.5]


def test_wildcards_are_literal_apart_from_star_and_question_mark():
    assert fc.wildcard_regex("a.b*c?") == r"^a\.b.*c.$"
    assert fc.criteria_match({"Criterion": {"type": {"Matches": ["Recon:EC2/*"]}}}, {"type": PORT_PROBE})
    assert not fc.criteria_match({"Criterion": {"type": {"Matches": ["Recon.EC2*"]}}}, {"type": PORT_PROBE})


@pytest.mark.parametrize(("criteria", "message"), [
    ({"Criterion": {"nope": {"Equals": ["x"]}}}, "not supported"),
    ({"Criterion": {"type": {"Like": ["x"]}}}, "Unknown operator"),
    ({"Criterion": {"type": {"Equals": "x"}}}, "list of values"),
    ({"Criterion": {"type": {"Equals": []}}}, "at least one"),
    ({"Criterion": {"severity": {"GreaterThan": "high"}}}, "not valid"),
    ({"Criterion": {"type": {"Equals": [str(i) for i in range(51)]}}}, "more than 50"),
    ({"Criterion": {"type": {"Matches": ["*a*b*c*"]}}}, "only allowed"),
    ({"Criterion": {"service.archived": {"Equals": ["maybe"]}}}, "not valid"),
    ({"Criterion": ["type"]}, "map"),
])
def test_invalid_criteria_are_refused_with_a_reason(criteria, message):
    with pytest.raises(fc.CriteriaError, match=message):
        fc.criteria_q(criteria)


def test_matches_limits_apply_to_filters():
    with pytest.raises(fc.CriteriaError, match="at most 5"):
        fc.validate({"Criterion": {"type": {"Matches": ["*a*b*c*d*e?"]}}}, allow_matches=True)
    assert fc.validate({"Criterion": {"type": {"Matches": ["*SSH*"]}}}, allow_matches=True)


def test_compiled_filter_binds_values_as_parameters(corpus):
    hostile = "x' OR '1'='1"
    rows = Finding.objects.filter(fc.criteria_q({"Criterion": {"type": {"Equals": [hostile]}}}))
    sql, params = rows.query.sql_with_params()
    assert hostile in params and hostile not in sql
    assert rows.count() == 0


def test_sort_order_tie_breaks_on_id():
    assert fc.sort_order({"AttributeName": "severity", "OrderBy": "DESC"}) == ["-severity", "id"]
    assert fc.sort_order(None) == ["-updated_at", "id"]
    with pytest.raises(fc.CriteriaError):
        fc.sort_order({"AttributeName": "resource.instanceDetails.instanceId"})
