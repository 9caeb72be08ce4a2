"""Issue 9's workflow in one piece, through the real boto3 client against a live server: create
detectors, upload a threat list to S3 (moto) and activate it, invite and accept a member, generate
sample findings, list with criteria, get, archive, create a suppression filter that archives new
findings, and read usage statistics priced with GuardDuty's tiers."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from findings.models import Finding
from findings.services import FindingDraft, findings_upsert_many
from ingest.services import usage_add


def test_guardduty_workflow(principal_factory, make_client, s3):
    admin, member = principal_factory(), principal_factory()
    gd, gd_member = make_client(admin), make_client(member)
    det = gd.create_detector(Enable=True)["DetectorId"]
    member_det = gd_member.create_detector(Enable=True)["DetectorId"]

    s3.put_object(Bucket="vigil-lists", Key="threats.txt", Body=b"198.51.100.23\n203.0.113.0/24\n")
    list_id = gd.create_threat_intel_set(DetectorId=det, Name="Partners-bad", Format="TXT", Activate=True,
                                         Location="s3://vigil-lists/threats.txt")["ThreatIntelSetId"]
    assert gd.get_threat_intel_set(DetectorId=det, ThreatIntelSetId=list_id)["Status"] == "ACTIVE"

    gd.create_members(DetectorId=det, AccountDetails=[{"AccountId": member.account.aws_account_id,
                                                       "Email": member.account.email}])
    gd.invite_members(DetectorId=det, AccountIds=[member.account.aws_account_id])
    invitation = gd_member.list_invitations()["Invitations"][0]
    gd_member.accept_administrator_invitation(DetectorId=member_det, AdministratorId=admin.account.aws_account_id,
                                              InvitationId=invitation["InvitationId"])
    assert gd.get_members(DetectorId=det, AccountIds=[member.account.aws_account_id])["Members"][0][
        "RelationshipStatus"] == "Enabled"
    # The member now sees (read-only) its administrator's threat list.
    assert gd_member.list_threat_intel_sets(DetectorId=member_det)["ThreatIntelSetIds"] == [list_id]

    gd_member.create_sample_findings(DetectorId=member_det, FindingTypes=[
        "UnauthorizedAccess:EC2/SSHBruteForce", "Recon:IAMUser/MaliciousIPCaller.Custom"])
    ssh = gd.list_findings(DetectorId=det, FindingCriteria={"Criterion": {
        "type": {"Equals": ["UnauthorizedAccess:EC2/SSHBruteForce"]},
        "accountId": {"Equals": [member.account.aws_account_id]}}})["FindingIds"]
    assert len(ssh) == 1
    finding = gd.get_findings(DetectorId=det, FindingIds=ssh)["Findings"][0]
    assert finding["Service"]["DetectorId"] == member_det and finding["Resource"]["ResourceType"] == "Instance"
    gd.archive_findings(DetectorId=det, FindingIds=ssh)
    assert Finding.objects.get(finding_id=ssh[0]).archived

    gd.create_filter(DetectorId=det, Name="ssh-bastions", Action="ARCHIVE", FindingCriteria={"Criterion": {
        "type": {"Equals": ["UnauthorizedAccess:EC2/SSHBruteForce"]}}})
    now = timezone.now()
    findings_upsert_many(drafts=[FindingDraft(
        account_id=member.account.id, region="us-east-1", type="UnauthorizedAccess:EC2/SSHBruteForce", severity=2.0,
        dedup_key="i-0abc", title="SSH brute force against i-0abc", first_seen=now, last_seen=now,
        detector_id=member.account.detectors.get().id,
        resource={"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0abc"}})])
    assert Finding.objects.get(instance_id="i-0abc").archived

    today = dt.date.today()
    usage_add(account_id=member.account.id, usage={
        ("CLOUD_TRAIL", "us-east-1", today, ""): [2_000_000, 0],
        ("FLOW_LOGS", "us-east-1", today, ""): [0, 10_000_000_000],
    })
    usage_add(account_id=admin.account.id, usage={("CLOUD_TRAIL", "us-east-1", today, ""): [500_000, 0]})
    by_source = gd.get_usage_statistics(DetectorId=det, UsageStatisticType="SUM_BY_DATA_SOURCE", UsageCriteria={
        "DataSources": ["CLOUD_TRAIL", "FLOW_LOGS"]})["UsageStatistics"]["SumByDataSource"]
    assert {r["DataSource"]: r["Total"] for r in by_source} == {
        "CLOUD_TRAIL": {"Amount": "10", "Unit": "USD"},  # 2.5M events at $4.00 per million
        "FLOW_LOGS": {"Amount": "10", "Unit": "USD"},    # 10 GB at $1.00 per GB
    }
    by_account = gd.get_usage_statistics(DetectorId=det, UsageStatisticType="SUM_BY_ACCOUNT",
                                         UsageCriteria={})["UsageStatistics"]["SumByAccount"]
    assert [(r["AccountId"], r["Total"]["Amount"]) for r in by_account] == [
        (member.account.aws_account_id, "18"), (admin.account.aws_account_id, "2")]
    # A member sees only its own usage.
    mine = gd_member.get_usage_statistics(DetectorId=member_det, UsageStatisticType="SUM_BY_FEATURES",
                                          UsageCriteria={})["UsageStatistics"]["SumByFeature"]
    assert {r["Feature"]: r["Total"]["Amount"] for r in mine} == {"CLOUD_TRAIL": "8", "FLOW_LOGS": "10"}
