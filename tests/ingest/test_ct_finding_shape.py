"""What an IAM/S3 finding carries, in GuardDuty's shape: AccessKeyDetails, S3BucketDetails where a
bucket is involved, AwsApiCallAction (api, service, caller type, user agent, error code, remote IP
details with country), threat list names, readable title and description, evidence events."""

from __future__ import annotations

import io
import json

from ingest.pipeline import Pipeline
from ingest.rules._ct import envelope, event
from ingest.rules.threat_intel import TOR_EXIT
from intel.matching import matcher_from_files


def detections(*records: dict) -> list:
    result = Pipeline(matcher=matcher_from_files()).process(
        "cloudtrail", io.BytesIO(json.dumps(envelope(*records)[0]).encode()), aws_account_id="123456789012",
        region="us-east-1")
    return result.detections


def test_s3_data_event_from_tor_names_key_bucket_api_and_list() -> None:
    found = detections(event("GetObject", ip=TOR_EXIT, user="dev", category="Data", agent="curl/8.5.0",
                             request={"bucketName": "payroll", "key": "june.csv"}))
    (d,) = [d for d in found if d.type == "UnauthorizedAccess:S3/TorIPCaller"]
    assert d.resource["resourceType"] == "S3Bucket"
    assert d.resource["accessKeyDetails"] == {"accessKeyId": "AKIADEV000000000EXMP", "principalId": "AIDADEV000000000EX",
                                              "userName": "dev", "userType": "IAMUser"}
    assert d.resource["s3BucketDetails"][0] == {"arn": "arn:aws:s3:::payroll", "name": "payroll", "type": "Destination"}
    call = d.service["action"]["awsApiCallAction"]
    assert d.service["action"]["actionType"] == "AWS_API_CALL"
    assert (call["api"], call["serviceName"], call["callerType"], call["userAgent"], call["errorCode"]) == (
        "GetObject", "s3.amazonaws.com", "Remote IP", "curl/8.5.0", "")
    assert call["remoteIpDetails"]["ipAddressV4"] == TOR_EXIT
    assert call["remoteIpDetails"]["country"]["countryCode"] == "DE"
    assert d.service["additionalInfo"]["threatListName"] == "TorExitNodes"
    assert "payroll" in d.title and TOR_EXIT in d.title and "dev" in d.description
    assert d.evidence[0]["event_name"] == "GetObject" and d.count == 1


def test_management_finding_with_bucket_and_error_free_call() -> None:
    found = detections(event("PutBucketPolicy", user="analyst", request={"bucketName": "exports", "bucketPolicy": {
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}}))
    (d,) = [d for d in found if d.type == "Policy:S3/BucketAnonymousAccessGranted"]
    assert d.resource["resourceType"] == "AccessKey"
    assert d.resource["s3BucketDetails"][0]["publicAccess"] == {"effectivePermission": "PUBLIC"}
    assert d.service["action"]["awsApiCallAction"]["affectedResources"] == {"AWS::S3::Bucket": "exports"}
    assert d.resolved_severity() == 8.0


def test_attack_sequence_lists_members_and_tactics() -> None:
    found = detections(
        event("ListUsers", source="iam.amazonaws.com", ip=TOR_EXIT, user="dev"),
        event("StopLogging", source="cloudtrail.amazonaws.com", user="dev", request={"name": "main"},
              t="2024-05-01T12:03:00Z"))
    (seq,) = [d for d in found if d.type == "AttackSequence:IAM/CompromisedCredentials"]
    members = {m["type"] for m in seq.service["additionalInfo"]["memberFindings"]}
    assert members == {"Recon:IAMUser/TorIPCaller", "Stealth:IAMUser/CloudTrailLoggingDisabled"}
    assert seq.service["detection"]["sequence"]["sequenceIndicators"] == [
        {"key": "ATTACK_TACTIC", "values": ["Defense Evasion", "Discovery"]}]
    assert seq.resolved_severity() == 9.0 and seq.resource["accessKeyDetails"]["userName"] == "dev"
