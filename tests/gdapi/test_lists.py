"""Threat intel sets and IP sets through boto3: a list uploaded to S3 (moto on loopback) becomes
ACTIVE, members see their administrator's lists read-only, and only S3 locations are read."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from accounts.models import Member

IPSUM = Path("/work/shared/data/external/ipsum/ipsum.txt")
if not IPSUM.exists():
    IPSUM = Path(__file__).resolve().parents[3] / "shared" / "data" / "external" / "ipsum" / "ipsum.txt"


@pytest.fixture
def org(principal_factory):
    admin = principal_factory(region="us-east-1")
    member = principal_factory(region="us-east-1")
    Member.objects.create(administrator=admin.account, member=member.account, email=member.account.email,
                          relationship_status="Enabled")
    return admin, member


def _threats() -> bytes:
    lines = [line for line in IPSUM.read_text().splitlines() if line and not line.startswith("#")][:500]
    return "\n".join(line.split()[0] for line in lines).encode() + b"\n"


def test_threat_intel_set_lifecycle(org, make_client, s3):
    admin, member = org
    s3.put_object(Bucket="vigil-lists", Key="threats/ipsum.txt", Body=_threats())
    gd, gd_member = make_client(admin), make_client(member)
    det = admin.account.detectors.get().detector_id
    member_det = member.account.detectors.get().detector_id

    set_id = gd.create_threat_intel_set(
        DetectorId=det, Name="IPsum", Format="TXT", Activate=True,
        Location="https://s3.amazonaws.com/vigil-lists/threats/ipsum.txt", Tags={"source": "ipsum"},
    )["ThreatIntelSetId"]
    got = gd.get_threat_intel_set(DetectorId=det, ThreatIntelSetId=set_id)
    assert (got["Name"], got["Format"], got["Status"]) == ("IPsum", "TXT", "ACTIVE")
    assert got["Location"] == "s3://vigil-lists/threats/ipsum.txt" and got["Tags"] == {"source": "ipsum"}
    assert gd.list_threat_intel_sets(DetectorId=det)["ThreatIntelSetIds"] == [set_id]

    # Members see the administrator's lists, read-only.
    assert gd_member.list_threat_intel_sets(DetectorId=member_det)["ThreatIntelSetIds"] == [set_id]
    assert gd_member.get_threat_intel_set(DetectorId=member_det, ThreatIntelSetId=set_id)["Status"] == "ACTIVE"
    with pytest.raises(ClientError) as denied:
        gd_member.update_threat_intel_set(DetectorId=member_det, ThreatIntelSetId=set_id, Activate=False)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as denied:
        gd_member.create_threat_intel_set(DetectorId=member_det, Name="mine", Format="TXT", Activate=True,
                                          Location="s3://vigil-lists/threats/ipsum.txt")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"

    gd.update_threat_intel_set(DetectorId=det, ThreatIntelSetId=set_id, Activate=False, Name="IPsum-level1")
    got = gd.get_threat_intel_set(DetectorId=det, ThreatIntelSetId=set_id)
    assert (got["Name"], got["Status"]) == ("IPsum-level1", "INACTIVE")
    gd.delete_threat_intel_set(DetectorId=det, ThreatIntelSetId=set_id)
    assert gd.list_threat_intel_sets(DetectorId=det)["ThreatIntelSetIds"] == []
    with pytest.raises(ClientError) as gone:
        gd.get_threat_intel_set(DetectorId=det, ThreatIntelSetId=set_id)
    assert gone.value.response["Error"]["Code"] == "BadRequestException"


def test_ip_set_and_refusals(org, make_client, s3, principal_factory):
    admin, _ = org
    s3.put_object(Bucket="vigil-lists", Key="trusted.txt", Body=b"192.0.2.0/24\n198.51.100.7\n")
    gd = make_client(admin)
    det = admin.account.detectors.get().detector_id
    ip_set = gd.create_ip_set(DetectorId=det, Name="office", Format="TXT", Activate=True,
                              Location="s3://vigil-lists/trusted.txt")["IpSetId"]
    assert gd.get_ip_set(DetectorId=det, IpSetId=ip_set)["Status"] == "ACTIVE"
    # One trusted list per account and region (GuardDuty's quota), from intel's service.
    with pytest.raises(ClientError) as quota:
        gd.create_ip_set(DetectorId=det, Name="second", Format="TXT", Activate=True,
                         Location="s3://vigil-lists/trusted.txt")
    assert quota.value.response["Error"]["Code"] == "BadRequestException"
    # Never a fetch from an arbitrary URL.
    with pytest.raises(ClientError) as ssrf:
        gd.create_threat_intel_set(DetectorId=det, Name="evil", Format="TXT", Activate=True,
                                   Location="http://169.254.169.254/latest/meta-data/")
    assert ssrf.value.response["Error"]["Code"] == "BadRequestException"
    # Another account cannot read the list through its own detector.
    stranger = principal_factory(region="us-east-1")
    with pytest.raises(ClientError) as foreign:
        make_client(stranger).get_ip_set(DetectorId=stranger.account.detectors.get().detector_id, IpSetId=ip_set)
    assert foreign.value.response["Error"]["Code"] == "BadRequestException"
    assert gd.list_ip_sets(DetectorId=det)["IpSetIds"] == [ip_set]
