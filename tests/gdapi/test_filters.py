"""Filters and suppression rules through boto3: CRUD, validation, GuardDuty's administrator-only
rule, and an ARCHIVE filter making a new matching finding arrive archived (and unpublished)."""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.exceptions import ClientError

from accounts.models import AuditEvent, Member
from findings.models import Finding, FindingPublication
from findings.services import FindingDraft, findings_upsert_many
from gdapi.filters import MAX_FILTERS


@pytest.fixture
def org(principal_factory):
    admin = principal_factory(region="us-east-1")
    member = principal_factory(region="us-east-1")
    Member.objects.create(administrator=admin.account, member=member.account, email=member.account.email,
                          relationship_status="Enabled")
    return admin, member


def _draft(principal, finding_type: str, instance: str, ip: str = "203.0.113.9") -> FindingDraft:
    now = dt.datetime.now(dt.UTC)
    return FindingDraft(
        account_id=principal.account.id, region="us-east-1", type=finding_type, severity=2.0, dedup_key=instance,
        title="probe", first_seen=now, last_seen=now, detector_id=principal.account.detectors.get().id,
        resource={"resourceType": "Instance", "instanceDetails": {"instanceId": instance}},
        service={"action": {"actionType": "PORT_PROBE", "portProbeAction": {"portProbeDetails": [
            {"remoteIpDetails": {"ipAddressV4": ip}}]}}},
    )


def test_filter_crud_and_suppression(org, make_client):
    admin, member = org
    gd, gd_member = make_client(admin), make_client(member)
    det, member_det = (p.account.detectors.get().detector_id for p in org)
    criteria = {"Criterion": {"type": {"Equals": ["Recon:EC2/PortProbeUnprotectedPort"]},
                              "resource.instanceDetails.instanceId": {"Matches": ["i-bastion*"]}}}
    assert gd.create_filter(DetectorId=det, Name="bastion-probes", Action="ARCHIVE", Rank=1,
                            Description="Internet-facing bastions are probed all day", FindingCriteria=criteria,
                            Tags={"owner": "sec"})["Name"] == "bastion-probes"
    gd.create_filter(DetectorId=det, Name="high.only", FindingCriteria={"Criterion": {"severity": {"Gte": 7}}})
    got = gd.get_filter(DetectorId=det, FilterName="bastion-probes")
    assert (got["Action"], got["Rank"], got["Tags"]) == ("ARCHIVE", 1, {"owner": "sec"})
    assert got["FindingCriteria"]["Criterion"]["resource.instanceDetails.instanceId"] == {"Matches": ["i-bastion*"]}
    assert gd.list_filters(DetectorId=det)["FilterNames"] == ["bastion-probes", "high.only"]

    # Members read their administrator's filters but cannot change them.
    assert gd_member.list_filters(DetectorId=member_det)["FilterNames"] == ["bastion-probes", "high.only"]
    with pytest.raises(ClientError) as denied:
        gd_member.delete_filter(DetectorId=member_det, FilterName="high.only")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as denied:
        gd_member.create_filter(DetectorId=member_det, Name="mine", FindingCriteria=criteria)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"

    # New member findings that match are stored archived and never queued for publishing.
    findings_upsert_many(drafts=[_draft(member, "Recon:EC2/PortProbeUnprotectedPort", "i-bastion01"),
                                 _draft(member, "Recon:EC2/PortProbeUnprotectedPort", "i-web01"),
                                 _draft(member, "Recon:EC2/Portscan", "i-bastion02")])
    archived = dict(Finding.objects.filter(account=member.account).values_list("instance_id", "archived"))
    assert archived == {"i-bastion01": True, "i-web01": False, "i-bastion02": False}
    suppressed = Finding.objects.get(instance_id="i-bastion01")
    assert not FindingPublication.objects.filter(finding=suppressed).exists()
    listed = gd.list_findings(DetectorId=det, FindingCriteria={"Criterion": {"service.archived": {"Eq": ["true"]}}})
    assert listed["FindingIds"] == [suppressed.finding_id]

    # Update the rule; later findings follow the new criteria (not retroactive).
    gd.update_filter(DetectorId=det, FilterName="bastion-probes", Action="NOOP")
    findings_upsert_many(drafts=[_draft(member, "Recon:EC2/PortProbeUnprotectedPort", "i-bastion03")])
    assert not Finding.objects.get(instance_id="i-bastion03").archived
    assert Finding.objects.get(instance_id="i-bastion01").archived

    arn = f"arn:aws:guardduty:us-east-1:{admin.account.aws_account_id}:detector/{det}/filter/bastion-probes"
    gd.tag_resource(ResourceArn=arn, Tags={"ticket": "SEC-42"})
    assert gd.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"owner": "sec", "ticket": "SEC-42"}

    gd.delete_filter(DetectorId=det, FilterName="bastion-probes")
    assert gd.list_filters(DetectorId=det)["FilterNames"] == ["high.only"]
    assert [e.action for e in AuditEvent.objects.filter(account=admin.account, target="bastion-probes")
            .order_by("id")] == ["filter.created", "filter.updated", "filter.updated", "filter.deleted"]


def test_filter_validation(principal_factory, make_client):
    alice = principal_factory(region="us-east-1")
    gd = make_client(alice)
    det = alice.account.detectors.get().detector_id
    ok = {"Criterion": {"type": {"Equals": ["Recon:EC2/Portscan"]}}}
    for name, criteria, wording in [
        ("bad name!", ok, "3 to 64"),
        ("unknown-attr", {"Criterion": {"resource.nope": {"Equals": ["x"]}}}, "not supported"),
        ("empty", {"Criterion": {}}, "at least one criterion"),
        ("wild", {"Criterion": {"type": {"Matches": ["*a*b*c*d*e*f"]}}}, "5 wildcard"),
    ]:
        with pytest.raises(ClientError) as exc:
            gd.create_filter(DetectorId=det, Name=name, FindingCriteria=criteria)
        assert exc.value.response["Error"]["Code"] == "BadRequestException"
        assert wording in exc.value.response["Error"]["Message"], exc.value.response["Error"]["Message"]
    gd.create_filter(DetectorId=det, Name="dup", FindingCriteria=ok)
    with pytest.raises(ClientError) as dup:
        gd.create_filter(DetectorId=det, Name="dup", FindingCriteria=ok)
    assert "already exists" in dup.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as missing:
        gd.get_filter(DetectorId=det, FilterName="nope")
    assert missing.value.response["Error"]["Code"] == "BadRequestException"
    assert MAX_FILTERS == 100
