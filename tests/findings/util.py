"""Real findings through the real write path (findings_upsert_many), for tests of the console."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from django.utils import timezone

from findings.models import Finding
from findings.services import FindingDraft, findings_upsert_many

_keys = itertools.count(1)

PORT_PROBE = "Recon:EC2/PortProbeUnprotectedPort"
SSH_BRUTE = "UnauthorizedAccess:EC2/SSHBruteForce"
MALICIOUS_IP = "UnauthorizedAccess:EC2/MaliciousIPCaller.Custom"
IAM_TOR = "UnauthorizedAccess:IAMUser/TorIPCaller"
S3_PUBLIC = "Policy:S3/BucketBlockPublicAccessDisabled"


def make_finding(account, *, finding_type: str = PORT_PROBE, severity: float = 5.0, instance: str = "i-0abc",
                 ip: str = "198.51.100.7", region: str = "us-east-1", key: str | None = None,
                 at: datetime | None = None, now: datetime | None = None, evidence=None, threat_list: str = "",
                 access_key: str = "", bucket: str = "", title: str = "", additional: dict | None = None) -> Finding:
    at = at or timezone.now()
    if access_key:
        resource = {"resourceType": "AccessKey", "accessKeyDetails": {"accessKeyId": access_key, "userName": "alice"}}
        action = {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets",
                                                                     "remoteIpDetails": {"ipAddressV4": ip}}}
    elif bucket:
        resource = {"resourceType": "S3Bucket", "s3BucketDetails": [{"name": bucket}]}
        action = {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "PutBucketPublicAccessBlock",
                                                                     "remoteIpDetails": {"ipAddressV4": ip}}}
    else:
        resource = {"resourceType": "Instance", "instanceDetails": {"instanceId": instance}}
        action = {"actionType": "NETWORK_CONNECTION",
                  "networkConnectionAction": {"remoteIpDetails": {"ipAddressV4": ip}}}
    info = dict(additional or {})
    if threat_list:
        info["threatListName"] = threat_list
    draft = FindingDraft(
        account_id=account.id, region=region, type=finding_type, severity=severity,
        dedup_key=key or f"k{next(_keys)}", title=title or f"{finding_type} on {instance or access_key or bucket}",
        first_seen=at, last_seen=at, resource=resource,
        service={"resourceRole": "TARGET", "action": action, "additionalInfo": info},
        evidence_events=evidence if evidence is not None else [{"srcaddr": ip, "dstaddr": "10.0.0.5"}],
        detector_id=(account.detectors.filter(region=region).first() or account.detectors.first()).pk
        if account.detectors.exists() else None,
    )
    result = findings_upsert_many(drafts=[draft], now=now or at)
    return Finding.objects.get(pk=(result.created or result.updated)[0])


T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
