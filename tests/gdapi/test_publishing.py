"""Publishing destinations through boto3, exporting to a real moto S3 server on loopback: gzip'd
JSON Lines of active findings (members' included for an administrator), incremental runs, and a
broken destination reported as GuardDuty does."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
from botocore.exceptions import ClientError
from django.utils import timezone

from accounts.models import Member
from findings.models import Finding
from findings.notifications import destination_export
from findings.rules_models import Destination
from gdapi.protocol import from_wire

KMS = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _exported(s3, prefix: str) -> list[dict]:
    lines = []
    for obj in s3.list_objects_v2(Bucket="vigil-lists", Prefix=prefix).get("Contents", []):
        body = s3.get_object(Bucket="vigil-lists", Key=obj["Key"])["Body"].read()
        lines += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return lines


def test_export_to_s3(principal_factory, make_client, s3):
    admin, member = principal_factory(region="us-east-1"), principal_factory(region="us-east-1")
    Member.objects.create(administrator=admin.account, member=member.account, email=member.account.email,
                          relationship_status="Enabled")
    gd, gd_member = make_client(admin), make_client(member)
    det = admin.account.detectors.get().detector_id
    member_det = member.account.detectors.get().detector_id
    gd_member.create_sample_findings(DetectorId=member_det, FindingTypes=["Recon:EC2/Portscan", "Recon:EC2/PortProbeUnprotectedPort"])
    gd.create_sample_findings(DetectorId=det, FindingTypes=["Policy:IAMUser/RootCredentialUsage"])
    portscan = Finding.objects.get(account=member.account, type="Recon:EC2/Portscan").finding_id
    gd.archive_findings(DetectorId=det, FindingIds=[portscan])

    destination_id = gd.create_publishing_destination(DetectorId=det, DestinationType="S3", DestinationProperties={
        "DestinationArn": "arn:aws:s3:::vigil-lists/exports", "KmsKeyArn": KMS})["DestinationId"]
    described = gd.describe_publishing_destination(DetectorId=det, DestinationId=destination_id)
    assert described["Status"] == "PUBLISHING"  # the bucket answered when verified at creation
    assert described["PublishingFailureStartTimestamp"] == 0
    assert described["DestinationProperties"] == {"DestinationArn": "arn:aws:s3:::vigil-lists/exports",
                                                  "KmsKeyArn": KMS}
    assert gd.list_publishing_destinations(DetectorId=det)["Destinations"] == [
        {"DestinationId": destination_id, "DestinationType": "S3", "Status": "PUBLISHING"}]
    with pytest.raises(ClientError) as one_only:
        gd.create_publishing_destination(DetectorId=det, DestinationType="S3", DestinationProperties={
            "DestinationArn": "arn:aws:s3:::vigil-lists/other", "KmsKeyArn": KMS})
    assert one_only.value.response["Error"]["Code"] == "BadRequestException"

    destination = Destination.objects.get(destination_id=destination_id)
    later = timezone.now() + dt.timedelta(seconds=1)
    assert destination_export(destination=destination, until=later) == 2
    prefix = f"exports/AWSLogs/{admin.account.aws_account_id}/GuardDuty/us-east-1/{later:%Y/%m/%d}/"
    exported = _exported(s3, prefix)
    assert {f["type"] for f in exported} == {"Recon:EC2/PortProbeUnprotectedPort", "Policy:IAMUser/RootCredentialUsage"}
    assert all(from_wire("Finding", f)["Id"] for f in exported)  # GuardDuty's GetFindings shape
    # Nothing changed since: no new object.
    destination.refresh_from_db()
    assert destination_export(destination=destination, until=later + dt.timedelta(seconds=1)) == 0
    assert len(_exported(s3, "exports/")) == 2

    # The member cannot see or change the administrator's destination through its own detector.
    with pytest.raises(ClientError) as foreign:
        gd_member.delete_publishing_destination(DetectorId=member_det, DestinationId=destination_id)
    assert foreign.value.response["Error"]["Code"] == "BadRequestException"

    gd.update_publishing_destination(DetectorId=det, DestinationId=destination_id, DestinationProperties={
        "DestinationArn": "arn:aws:s3:::no-such-bucket-vigil/x"})
    broken = gd.describe_publishing_destination(DetectorId=det, DestinationId=destination_id)
    assert broken["Status"] == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
    assert broken["PublishingFailureStartTimestamp"] > 0
    gd.delete_publishing_destination(DetectorId=det, DestinationId=destination_id)
    assert gd.list_publishing_destinations(DetectorId=det)["Destinations"] == []


def test_destination_validation(principal_factory, make_client):
    alice = principal_factory(region="us-east-1")
    gd = make_client(alice)
    det = alice.account.detectors.get().detector_id
    for props, wording in [({"DestinationArn": "s3://bucket", "KmsKeyArn": KMS}, "S3 bucket ARN"),
                           ({"DestinationArn": "arn:aws:s3:::bucket"}, "KMS key ARN is required")]:
        with pytest.raises(ClientError) as exc:
            gd.create_publishing_destination(DetectorId=det, DestinationType="S3", DestinationProperties=props)
        assert wording in exc.value.response["Error"]["Message"]
