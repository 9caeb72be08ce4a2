"""Sample findings (GuardDuty's CreateSampleFindings): one finding per requested type, with
GuardDuty's placeholder values, `[SAMPLE]` in the title and `additionalInfo.sample = true`.

Repeated calls aggregate into the same sample finding (count grows), as real repeats do.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import Detector
from console.errors import ServiceError
from findings.catalog import FINDING_TYPES, FindingType
from findings.services import FindingDraft, UpsertResult, findings_upsert_many

_REMOTE_IP = {
    "ipAddressV4": "198.51.100.0",
    "organization": {"asn": "-1", "asnOrg": "GeneratedFindingASNOrg", "isp": "GeneratedFindingISP",
                     "org": "GeneratedFindingORG"},
    "country": {"countryName": "GeneratedFindingCountryName"},
    "city": {"cityName": "GeneratedFindingCityName"},
    "geoLocation": {"lat": 0.0, "lon": 0.0},
}
_ACCESS_KEY = {"accessKeyId": "GeneratedFindingAccessKeyId", "principalId": "GeneratedFindingPrincipalId",
               "userName": "GeneratedFindingUserName", "userType": "IAMUser"}


def _resource(kind: FindingType, region: str) -> dict[str, Any]:
    if kind.resource_type == "Instance":
        return {"resourceType": "Instance", "instanceDetails": {
            "instanceId": "i-99999999", "instanceType": "m3.xlarge", "instanceState": "running",
            "availabilityZone": f"{region}a", "imageId": "ami-99999999", "imageDescription": "GeneratedFindingInstaceImageDescription",
            "platform": None, "launchTime": "2016-08-02T02:05:06.000Z",
            "tags": [{"key": "GeneratedFindingInstaceTag1", "value": "GeneratedFindingInstaceValue1"}],
            "networkInterfaces": [{"networkInterfaceId": "eni-abcdef00", "privateIpAddress": "10.0.0.1",
                                   "publicIp": "198.51.100.0", "subnetId": "GeneratedFindingSubnetId",
                                   "vpcId": "GeneratedFindingVPCId",
                                   "securityGroups": [{"groupId": "GeneratedFindingSecurityId",
                                                       "groupName": "GeneratedFindingSecurityGroupName"}]}],
        }}
    if kind.resource_type == "S3Bucket":
        return {"resourceType": "S3Bucket", "accessKeyDetails": dict(_ACCESS_KEY), "s3BucketDetails": [{
            "arn": "arn:aws:s3:::bucketName", "name": "bucketName", "type": "Destination",
            "owner": {"id": "CanonicalId of Owner"}, "tags": [{"key": "foo", "value": "bar"}],
            "defaultServerSideEncryption": {"encryptionType": "SSEAlgorithm"},
        }]}
    return {"resourceType": "AccessKey", "accessKeyDetails": dict(_ACCESS_KEY)}


def _action(kind: FindingType) -> dict[str, Any]:
    action = kind.action
    if action == "NETWORK_CONNECTION":
        return {"actionType": action, "networkConnectionAction": {
            "connectionDirection": "OUTBOUND", "protocol": "TCP", "blocked": False,
            "localPortDetails": {"port": 39677, "portName": "Unknown"}, "localIpDetails": {"ipAddressV4": "10.0.0.1"},
            "remoteIpDetails": dict(_REMOTE_IP), "remotePortDetails": {"port": 80, "portName": "HTTP"}}}
    if action == "PORT_PROBE":
        return {"actionType": action, "portProbeAction": {"blocked": False, "portProbeDetails": [{
            "localPortDetails": {"port": 80, "portName": "HTTP"}, "localIpDetails": {"ipAddressV4": "10.0.0.1"},
            "remoteIpDetails": dict(_REMOTE_IP)}]}}
    if action == "DNS_REQUEST":
        return {"actionType": action, "dnsRequestAction": {"domain": "GeneratedFindingDomainName", "protocol": "UDP",
                                                           "blocked": False}}
    return {"actionType": "AWS_API_CALL", "awsApiCallAction": {
        "api": "GeneratedFindingAPIName", "serviceName": "GeneratedFindingAPIServiceName", "callerType": "Remote IP",
        "userAgent": "GeneratedFindingUserAgent", "remoteIpDetails": dict(_REMOTE_IP)}}


def _draft(kind: FindingType, detector: Detector, now) -> FindingDraft:
    service: dict[str, Any] = {"action": _action(kind), "resourceRole": "TARGET",
                               "additionalInfo": {"sample": True}}
    if kind.name.endswith(".Custom") or "MaliciousIPCaller" in kind.name:
        service["additionalInfo"]["threatListName"] = "GeneratedFindingThreatListName"
        service["evidence"] = {"threatIntelligenceDetails": [
            {"threatListName": "GeneratedFindingThreatListName", "threatNames": ["GeneratedFindingThreatName"]}]}
    return FindingDraft(
        account_id=detector.account_id, region=detector.region, type=kind.name, severity=kind.severity,
        dedup_key="sample", title=f"[SAMPLE] {kind.description}", description=kind.description,
        resource=_resource(kind, detector.region), service=service, first_seen=now, last_seen=now,
        detector_id=detector.id, is_sample=True,
    )


@transaction.atomic
def sample_findings_create(*, actor: Any, detector: Detector, finding_types: list[str] | None = None) -> UpsertResult:
    """GuardDuty lets any account generate samples in its own account only."""
    access.require_role(actor, detector.account, access.TRIAGE_ROLES, what="generate sample findings")
    unknown = [t for t in finding_types or [] if t not in FINDING_TYPES]
    if unknown:
        raise ServiceError(f"Unknown finding type(s): {', '.join(unknown[:5])}.")
    kinds = [FINDING_TYPES[t] for t in dict.fromkeys(finding_types)] if finding_types else list(FINDING_TYPES.values())
    now = timezone.now()
    result = findings_upsert_many(drafts=[_draft(k, detector, now) for k in kinds], now=now)
    audit_record(account=detector.account, actor=actor, action="finding.samples_created",
                 target=detector.detector_id, count=len(kinds))
    return result
