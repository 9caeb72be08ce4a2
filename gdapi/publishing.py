"""GuardDuty's publishing destinations (CreatePublishingDestination and friends) over the console's
destinations (findings.notifications): one model, one export, whichever surface created it.

GuardDuty's rules kept here, at the edge: a destination belongs to one detector (one per detector,
that detector's Region), is named by its DestinationId, is always an S3 bucket ARN with a required
KMS key, and reports GuardDuty's status values. The export itself (gzip'd JSON Lines of active
findings, members' included for an administrator, under `<prefix>/AWSLogs/<account>/GuardDuty/
<region>/YYYY/MM/DD/`) is findings.notifications.destination_export.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from accounts import access
from accounts.models import Detector
from console.errors import NotFoundError, ServiceError
from findings import notifications
from findings.rules_models import Destination

BUCKET_ARN_RE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):s3:::(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])"
                           r"(?:/(?P<prefix>.*))?$")


def _config(destination_arn: str, kms_key_arn: str, expected_bucket_owner: str,
            base: dict[str, Any] | None = None) -> dict[str, Any]:
    """GuardDuty's DestinationProperties -> the destination's S3 settings."""
    match = BUCKET_ARN_RE.match(destination_arn or "")
    if match is None:
        raise ServiceError("The destination must be an S3 bucket ARN such as arn:aws:s3:::my-bucket/findings/.")
    config = {k: v for k, v in (base or {}).items()
              if k not in ("bucket", "prefix", "partition", "kms_key_arn", "expected_bucket_owner")}
    config.update(bucket=match["bucket"], kms_key_arn=kms_key_arn)
    if match["prefix"]:
        config["prefix"] = match["prefix"]
    if match["partition"] != "aws":
        config["partition"] = match["partition"]
    if expected_bucket_owner:
        config["expected_bucket_owner"] = expected_bucket_owner
    return config


def properties(destination: Destination) -> dict[str, Any]:
    """The destination's S3 settings as GuardDuty's DestinationProperties."""
    config = destination.config or {}
    prefix = config.get("prefix")
    arn = f"arn:{config.get('partition', 'aws')}:s3:::{config.get('bucket', '')}" + (f"/{prefix}" if prefix else "")
    return {"DestinationArn": arn, "KmsKeyArn": config.get("kms_key_arn"),
            "ExpectedBucketOwner": config.get("expected_bucket_owner") or None}


def failure_started(destination: Destination) -> datetime | None:
    return destination.failing_since if destination.status == Destination.Status.FAILING else None


def destination_create(*, actor: Any, detector: Detector, destination_arn: str, kms_key_arn: str,
                       expected_bucket_owner: str = "", tags: dict[str, str] | None = None) -> Destination:
    if not kms_key_arn:
        raise ServiceError("A KMS key ARN is required, e.g. arn:aws:kms:us-east-1:123456789012:key/1234abcd-….")
    return notifications.destination_create(
        actor=actor, account=detector.account, detector=detector, kind=Destination.Kind.S3,
        config=_config(destination_arn, kms_key_arn, expected_bucket_owner), tags=tags,
        # The detector id keeps the name unique in the account (one destination per detector).
        name=f"GuardDuty export {detector.region} ({detector.detector_id[:8]})")


def destination_list(*, actor: Any, detector: Detector) -> QuerySet[Destination]:
    if access.role_in(actor, detector.account) is None:
        return Destination.objects.none()
    return Destination.objects.filter(detector=detector).select_related("account", "detector").order_by(
        "created_at", "id")


def destination_get(*, actor: Any, detector: Detector, destination_id: str) -> Destination:
    destination = destination_list(actor=actor, detector=detector).filter(destination_id=destination_id).first()
    if destination is None:
        raise NotFoundError("No such publishing destination.")
    return destination


def destination_update(*, actor: Any, detector: Detector, destination_id: str, destination_arn: str | None = None,
                       kms_key_arn: str | None = None, expected_bucket_owner: str | None = None,
                       tags: dict[str, str] | None = None) -> Destination:
    destination = destination_get(actor=actor, detector=detector, destination_id=destination_id)
    changes: dict[str, Any] = {}
    if any(v is not None for v in (destination_arn, kms_key_arn, expected_bucket_owner)):
        current = properties(destination)
        changes["config"] = _config(
            destination_arn if destination_arn is not None else current["DestinationArn"],
            kms_key_arn if kms_key_arn is not None else current["KmsKeyArn"],
            expected_bucket_owner if expected_bucket_owner is not None else current["ExpectedBucketOwner"] or "",
            base=destination.config)
    if tags is not None:
        changes["tags"] = tags
    return notifications.destination_update(actor=actor, destination=destination, **changes)


def destination_delete(*, actor: Any, detector: Detector, destination_id: str) -> None:
    notifications.destination_delete(
        actor=actor, destination=destination_get(actor=actor, detector=detector, destination_id=destination_id))
