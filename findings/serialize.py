"""A stored finding as GuardDuty returns it: GetFindings' REST JSON (camelCase) or boto3's PascalCase shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from findings.models import Finding


def iso(value: datetime | None) -> str | None:
    """GuardDuty's timestamps: ISO-8601 UTC with milliseconds and a Z."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def finding_to_guardduty(finding: Finding) -> dict[str, Any]:
    """GetFindings' JSON for one finding (REST-JSON, camelCase)."""
    stored = dict(finding.service or {})
    info = dict(stored.pop("additionalInfo", None) or {})
    if finding.is_sample:
        info["sample"] = True
    detector_id = finding.detector.detector_id if finding.detector is not None else ""
    service: dict[str, Any] = {
        "serviceName": "guardduty",
        "detectorId": detector_id,
        "archived": finding.archived,
        "count": finding.count,
        "eventFirstSeen": iso(finding.first_seen),
        "eventLastSeen": iso(finding.last_seen),
        **stored,
        # The API model types additionalInfo as {value: <JSON string>, type: "default"}.
        "additionalInfo": {"value": json.dumps(info, separators=(",", ":"), sort_keys=True), "type": "default"},
    }
    if finding.feedback:
        service["userFeedback"] = finding.feedback
    return {
        "schemaVersion": "2.0",
        "accountId": finding.account.aws_account_id,
        "region": finding.region,
        "partition": finding.partition,
        "id": finding.finding_id,
        "arn": finding.arn,
        "type": finding.type,
        "severity": finding.severity,
        "title": finding.title,
        "description": finding.description,
        "createdAt": iso(finding.created_at),
        "updatedAt": iso(finding.updated_at),
        "resource": finding.resource or {"resourceType": finding.resource_type},
        "service": service,
    }


# Keys whose values are user maps (their own keys must stay as they are).
_OPAQUE = {"affectedResources", "AffectedResources"}
# Where botocore's member names differ from a plain capitalisation of the REST name.
_SDK_NAMES = {"ipAddressV4": "IpAddressV4", "ipAddressV6": "IpAddressV6", "ipv6Addresses": "Ipv6Addresses"}


def _pascal(key: str) -> str:
    return _SDK_NAMES.get(key) or (key[:1].upper() + key[1:])


def _to_sdk(value: Any) -> Any:
    if isinstance(value, dict):
        return {_pascal(k): (v if k in _OPAQUE else _to_sdk(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_sdk(v) for v in value]
    return value


def finding_to_sdk(finding: Finding) -> dict[str, Any]:
    """The PascalCase shape boto3's get_findings returns (timestamps stay ISO-8601 strings for JSON output)."""
    return _to_sdk(finding_to_guardduty(finding))
