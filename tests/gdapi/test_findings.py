"""Findings through boto3: samples, criteria, sorting, keyset pagination, get, archive, feedback,
statistics, and GuardDuty's visibility rules between administrator and member."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from accounts.models import AuditEvent, Member
from findings.models import Finding
from findings.services import FindingDraft, findings_upsert_many


@pytest.fixture
def org(principal_factory):
    admin = principal_factory(region="us-east-1")
    member = principal_factory(region="us-east-1")
    Member.objects.create(administrator=admin.account, member=member.account, email=member.account.email,
                          relationship_status="Enabled")
    return admin, member


def _detector(principal) -> str:
    return principal.account.detectors.get().detector_id


def _seed(principal, n: int, *, finding_type: str = "Recon:EC2/PortProbeUnprotectedPort", severity: float = 2.0,
          start: int = 0) -> None:
    detector = principal.account.detectors.get()
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    drafts = [FindingDraft(account_id=principal.account.id, region="us-east-1", type=finding_type, severity=severity,
                           dedup_key=f"i-{i:08d}", title=f"probe {i}",
                           first_seen=base + dt.timedelta(minutes=i), last_seen=base + dt.timedelta(minutes=i),
                           detector_id=detector.id,
                           resource={"resourceType": "Instance", "instanceDetails": {"instanceId": f"i-{i:08d}"}},
                           service={"action": {"actionType": "PORT_PROBE"}})
              for i in range(start, start + n)]
    findings_upsert_many(drafts=drafts)


def test_sample_findings_list_get_archive_feedback(org, make_client):
    admin, member = org
    gd_admin, gd_member = make_client(admin), make_client(member)
    admin_det, member_det = _detector(admin), _detector(member)
    gd_member.create_sample_findings(DetectorId=member_det, FindingTypes=[
        "Recon:EC2/PortProbeUnprotectedPort", "UnauthorizedAccess:IAMUser/TorIPCaller",
        "UnauthorizedAccess:S3/MaliciousIPCaller.Custom"])
    with pytest.raises(ClientError) as bad_type:
        gd_member.create_sample_findings(DetectorId=member_det, FindingTypes=["Nope:EC2/Nothing"])
    assert bad_type.value.response["Error"]["Code"] == "BadRequestException"

    # The member sees its own findings; the administrator's detector sees them too.
    member_ids = gd_member.list_findings(DetectorId=member_det)["FindingIds"]
    assert len(member_ids) == 3
    assert sorted(gd_admin.list_findings(DetectorId=admin_det)["FindingIds"]) == sorted(member_ids)

    findings = gd_admin.get_findings(DetectorId=admin_det, FindingIds=member_ids)["Findings"]
    by_type = {f["Type"]: f for f in findings}
    probe = by_type["Recon:EC2/PortProbeUnprotectedPort"]
    assert probe["AccountId"] == member.account.aws_account_id and probe["Title"].startswith("[SAMPLE]")
    assert probe["Resource"]["InstanceDetails"]["InstanceId"] == "i-99999999"
    assert probe["Service"]["Action"]["PortProbeAction"]["PortProbeDetails"][0]["LocalPortDetails"]["Port"] == 80
    assert '"sample":true' in probe["Service"]["AdditionalInfo"]["Value"]
    assert by_type["UnauthorizedAccess:S3/MaliciousIPCaller.Custom"]["Resource"]["S3BucketDetails"][0]["Name"] == \
        "bucketName"

    # Criteria: type Equals, severity levels, resource type.
    high = gd_admin.list_findings(DetectorId=admin_det, FindingCriteria={"Criterion": {
        "severity": {"GreaterThanOrEqual": 7}}})["FindingIds"]
    assert {f["Type"] for f in findings if f["Id"] in high} == {f["Type"] for f in findings if f["Severity"] >= 7}
    assert high and len(high) < 3
    low = gd_admin.list_findings(DetectorId=admin_det, FindingCriteria={"Criterion": {
        "severity": {"Equals": ["2"]}, "resource.resourceType": {"Equals": ["Instance"]}}})["FindingIds"]
    assert low == [probe["Id"]]

    # Only the administrator archives member findings (GuardDuty's rule).
    with pytest.raises(ClientError) as denied:
        gd_member.archive_findings(DetectorId=member_det, FindingIds=[probe["Id"]])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    gd_admin.archive_findings(DetectorId=admin_det, FindingIds=[probe["Id"]])
    assert Finding.objects.get(finding_id=probe["Id"]).archived
    archived = gd_admin.list_findings(DetectorId=admin_det, FindingCriteria={"Criterion": {
        "service.archived": {"Equals": ["true"]}}})["FindingIds"]
    assert archived == [probe["Id"]]
    assert len(gd_admin.list_findings(DetectorId=admin_det, FindingCriteria={"Criterion": {
        "service.archived": {"Equals": ["false"]}}})["FindingIds"]) == 2
    gd_admin.unarchive_findings(DetectorId=admin_det, FindingIds=[probe["Id"]])
    assert not Finding.objects.get(finding_id=probe["Id"]).archived
    assert AuditEvent.objects.filter(account=member.account, action="finding.archived", actor=admin.user).exists()

    # Members may give feedback on their own findings.
    gd_member.update_findings_feedback(DetectorId=member_det, FindingIds=[probe["Id"]], Feedback="NOT_USEFUL",
                                       Comments="scanner we run")
    got = gd_member.get_findings(DetectorId=member_det, FindingIds=[probe["Id"]])["Findings"][0]
    assert got["Service"]["UserFeedback"] == "NOT_USEFUL"

    # The administrator's own findings stay invisible to the member.
    gd_admin.create_sample_findings(DetectorId=admin_det, FindingTypes=["Policy:IAMUser/RootCredentialUsage"])
    assert len(gd_member.list_findings(DetectorId=member_det)["FindingIds"]) == 3
    admin_only = Finding.objects.get(account=admin.account).finding_id
    assert gd_member.get_findings(DetectorId=member_det, FindingIds=[admin_only])["Findings"] == []
    with pytest.raises(ClientError) as foreign:
        gd_member.update_findings_feedback(DetectorId=member_det, FindingIds=[admin_only], Feedback="USEFUL")
    assert foreign.value.response["Error"]["Code"] == "BadRequestException"


def test_every_sample_type_parses(principal_factory, make_client):
    alice = principal_factory(region="us-east-1")
    gd = make_client(alice)
    det = _detector(alice)
    gd.create_sample_findings(DetectorId=det)
    ids = [i for page in gd.get_paginator("list_findings").paginate(DetectorId=det) for i in page["FindingIds"]]
    from findings.catalog import FINDING_TYPES

    assert len(ids) == len(FINDING_TYPES)
    types = set()
    for start in range(0, len(ids), 50):
        types |= {f["Type"] for f in gd.get_findings(DetectorId=det, FindingIds=ids[start:start + 50])["Findings"]}
    assert types == set(FINDING_TYPES)
    # Repeats aggregate into the same sample findings.
    gd.create_sample_findings(DetectorId=det, FindingTypes=["Recon:EC2/Portscan"])
    assert Finding.objects.get(account=alice.account, type="Recon:EC2/Portscan").count == 2


def test_sorting_keyset_pagination_and_statistics(principal_factory, make_client):
    alice = principal_factory(region="us-east-1")
    gd = make_client(alice)
    det = _detector(alice)
    _seed(alice, 120)
    _seed(alice, 5, finding_type="UnauthorizedAccess:EC2/TorClient", severity=8.0, start=1000)
    pages = list(gd.get_paginator("list_findings").paginate(
        DetectorId=det, SortCriteria={"AttributeName": "service.eventLastSeen", "OrderBy": "DESC"},
        PaginationConfig={"PageSize": 50}))
    ids = [i for p in pages for i in p["FindingIds"]]
    assert [len(p["FindingIds"]) for p in pages] == [50, 50, 25]
    assert len(set(ids)) == 125
    expected = list(Finding.objects.filter(account=alice.account).order_by("-last_seen", "-finding_id")
                    .values_list("finding_id", flat=True))
    assert ids == expected
    by_instance = gd.list_findings(DetectorId=alice.account.detectors.get().detector_id, FindingCriteria={
        "Criterion": {"resource.instanceDetails.instanceId": {"Equals": ["i-00000007", "i-00000009"]}}})
    assert len(by_instance["FindingIds"]) == 2
    since = int(dt.datetime(2026, 1, 1, 1, 50, tzinfo=dt.UTC).timestamp() * 1000)
    recent = gd.list_findings(DetectorId=det, FindingCriteria={"Criterion": {
        "service.eventLastSeen": {"GreaterThanOrEqual": since}, "type": {"Equals": [
            "Recon:EC2/PortProbeUnprotectedPort"]}}}, MaxResults=50)["FindingIds"]
    assert len(recent) == 10  # minutes 110..119

    stats = gd.get_findings_statistics(DetectorId=det, FindingStatisticTypes=["COUNT_BY_SEVERITY"])
    assert stats["FindingStatistics"]["CountBySeverity"] == {"2.0": 120, "8.0": 5}
    grouped = gd.get_findings_statistics(DetectorId=det, GroupBy="FINDING_TYPE", OrderBy="DESC")
    assert [(g["FindingType"], g["TotalFindings"]) for g in grouped["FindingStatistics"]["GroupedByFindingType"]] == [
        ("Recon:EC2/PortProbeUnprotectedPort", 120), ("UnauthorizedAccess:EC2/TorClient", 5)]
    by_account = gd.get_findings_statistics(DetectorId=det, GroupBy="ACCOUNT")["FindingStatistics"]
    assert by_account["GroupedByAccount"][0]["TotalFindings"] == 125
    by_date = gd.get_findings_statistics(DetectorId=det, GroupBy="DATE")["FindingStatistics"]["GroupedByDate"]
    assert sum(g["TotalFindings"] for g in by_date) == 125

    with pytest.raises(ClientError) as bad:
        gd.list_findings(DetectorId=det, FindingCriteria={"Criterion": {"resource.nonsense": {"Equals": ["x"]}}})
    assert bad.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ClientError) as matches:
        gd.list_findings(DetectorId=det, FindingCriteria={"Criterion": {"type": {"Matches": ["Recon*"]}}})
    assert "only allowed in filters" in matches.value.response["Error"]["Message"]


@pytest.mark.slow  # 10,000 findings, 200 signed page requests
def test_paginator_walks_ten_thousand_findings(principal_factory, make_client):
    alice = principal_factory(region="us-east-1")
    _seed(alice, 10_000)
    gd = make_client(alice)
    ids = [i for page in gd.get_paginator("list_findings").paginate(DetectorId=_detector(alice))
           for i in page["FindingIds"]]
    assert len(ids) == 10_000 and len(set(ids)) == 10_000
    assert set(ids) == set(Finding.objects.filter(account=alice.account).values_list("finding_id", flat=True))
