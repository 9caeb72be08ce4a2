"""Publishing destinations (GuardDuty's S3 export): writes, reads and the export itself.

GuardDuty's rules: one destination per detector; the account sets its own export location, and an
administrator's export covers its associated members' findings in that region; archived findings
(including suppressed ones) are never exported. Objects are gzip'd JSON Lines, one finding (as
GetFindings returns it) per line, under `<prefix>/AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/`,
encrypted with the destination's KMS key. Each run exports what changed since the last one.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import ASSOCIATED_STATUSES, Detector, Member
from console.errors import ConflictError, NotFoundError, ServiceError
from gdapi.models import PublishingDestination

logger = logging.getLogger("vigil.gdapi.publishing")
BUCKET_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?$")
KMS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]{1,256}$")
BATCH = 2000
# Findings younger than this are left for the next run, so a detection transaction still in flight
# (its updated_at already set) is not skipped for good by the watermark.
SETTLE = timedelta(seconds=60)


def _validate(destination_arn: str | None, kms_key_arn: str | None, expected_bucket_owner: str | None) -> None:
    if destination_arn is not None and not BUCKET_ARN_RE.match(destination_arn):
        raise ServiceError("The destination must be an S3 bucket ARN such as arn:aws:s3:::my-bucket/findings/.")
    if kms_key_arn is not None and not KMS_ARN_RE.match(kms_key_arn):
        raise ServiceError("A KMS key ARN is required, e.g. arn:aws:kms:us-east-1:123456789012:key/1234abcd-….")
    if expected_bucket_owner and not re.fullmatch(r"\d{12}", expected_bucket_owner):
        raise ServiceError("The expected bucket owner is a 12-digit AWS account id.")


@transaction.atomic
def destination_create(*, actor: Any, detector: Detector, destination_arn: str, kms_key_arn: str,
                       expected_bucket_owner: str = "", tags: dict[str, str] | None = None) -> PublishingDestination:
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="set the findings export location")
    _validate(destination_arn, kms_key_arn, expected_bucket_owner)
    if PublishingDestination.objects.filter(detector=detector).exists():
        raise ConflictError("This detector already has a publishing destination (the limit is one).")
    destination = PublishingDestination.objects.create(
        detector=detector, destination_arn=destination_arn, kms_key_arn=kms_key_arn,
        expected_bucket_owner=expected_bucket_owner, tags=tags or {},
    )
    audit_record(account=detector.account, actor=actor, action="publishing.created", target=destination.destination_id,
                 destination_arn=destination_arn, region=detector.region)
    _schedule(destination)
    return destination


def _for_manage(actor: Any, detector: Detector, destination_id: str) -> PublishingDestination:
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="change the findings export location")
    destination = (PublishingDestination.objects.select_for_update()
                   .filter(detector=detector, destination_id=destination_id).first())
    if destination is None:
        raise NotFoundError("No such publishing destination.")
    return destination


@transaction.atomic
def destination_update(*, actor: Any, detector: Detector, destination_id: str, destination_arn: str | None = None,
                       kms_key_arn: str | None = None, expected_bucket_owner: str | None = None,
                       tags: dict[str, str] | None = None) -> PublishingDestination:
    destination = _for_manage(actor, detector, destination_id)
    _validate(destination_arn, kms_key_arn, expected_bucket_owner)
    changed = {k: v for k, v in {"destination_arn": destination_arn, "kms_key_arn": kms_key_arn,
                                 "expected_bucket_owner": expected_bucket_owner, "tags": tags}.items()
               if v is not None and getattr(destination, k) != v}
    for key, value in changed.items():
        setattr(destination, key, value)
    if set(changed) - {"tags"}:
        destination.status = PublishingDestination.Status.PENDING_VERIFICATION
    if changed:
        destination.save()
        audit_record(account=detector.account, actor=actor, action="publishing.updated",
                     target=destination.destination_id, changed=changed)
        _schedule(destination)
    return destination


@transaction.atomic
def destination_delete(*, actor: Any, detector: Detector, destination_id: str) -> None:
    destination = _for_manage(actor, detector, destination_id)
    audit_record(account=detector.account, actor=actor, action="publishing.deleted",
                 target=destination.destination_id, destination_arn=destination.destination_arn)
    destination.delete()


def destination_list(*, actor: Any, detector: Detector) -> QuerySet[PublishingDestination]:
    if access.role_in(actor, detector.account) is None:
        return PublishingDestination.objects.none()
    return PublishingDestination.objects.filter(detector=detector).order_by("created_at", "id")


def destination_get(*, actor: Any, detector: Detector, destination_id: str) -> PublishingDestination:
    destination = destination_list(actor=actor, detector=detector).filter(destination_id=destination_id).first()
    if destination is None:
        raise NotFoundError("No such publishing destination.")
    return destination


def _schedule(destination: PublishingDestination) -> None:
    from gdapi.tasks import publishing_export_task

    publishing_export_task.delay_on_commit(destination.id)


# --- export (Celery) ------------------------------------------------------------------------


def _findings(destination: PublishingDestination, until: datetime) -> QuerySet:
    from findings.models import Finding

    detector = destination.detector
    members = Member.objects.filter(administrator=detector.account,
                                    relationship_status__in=ASSOCIATED_STATUSES).values_list("member_id", flat=True)
    findings = Finding.objects.filter(account_id__in=[detector.account_id, *members], region=detector.region,
                                      archived=False, updated_at__lte=until)
    if destination.exported_until is not None:
        findings = findings.filter(updated_at__gt=destination.exported_until)
    return findings.select_related("account", "detector").order_by("updated_at", "id")


def destination_export(*, destination_id: int, now: datetime | None = None) -> int:
    """Export what changed since the last run; returns how many findings were written. A failing
    destination is marked UNABLE_TO_PUBLISH… with the time of the first failure and retried next run."""
    from findings.serialize import finding_to_guardduty
    from ingest.aws import client_for

    destination = (PublishingDestination.objects.select_related("detector__account")
                   .filter(id=destination_id).first())
    if destination is None or destination.status == PublishingDestination.Status.STOPPED:
        return 0
    until = now or timezone.now() - SETTLE
    detector = destination.detector
    match = BUCKET_ARN_RE.match(destination.destination_arn)
    bucket, prefix = match["bucket"], (match["prefix"] or "").strip("/")
    written = 0
    try:
        s3 = client_for(detector.account, "s3", detector.region)
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb") as archive:
            for finding in _findings(destination, until).iterator(chunk_size=BATCH):
                archive.write(json.dumps(finding_to_guardduty(finding), separators=(",", ":")).encode() + b"\n")
                written += 1
        if written:
            key = "/".join(p for p in (prefix, "AWSLogs", detector.account.aws_account_id, "GuardDuty",
                                       detector.region, until.strftime("%Y/%m/%d"), f"{uuid.uuid4()}.jsonl.gz") if p)
            params: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": buffer.getvalue(),
                                      "ServerSideEncryption": "aws:kms", "SSEKMSKeyId": destination.kms_key_arn}
            if destination.expected_bucket_owner:
                params["ExpectedBucketOwner"] = destination.expected_bucket_owner
            s3.put_object(**params)
        else:
            s3.head_bucket(Bucket=bucket)  # verify the destination even when there is nothing to send
    except (ClientError, BotoCoreError) as exc:
        logger.warning("Export to %s failed: %s", destination.destination_arn, exc)
        PublishingDestination.objects.filter(id=destination.id).update(
            status=PublishingDestination.Status.UNABLE_TO_PUBLISH, last_error=str(exc)[:1000],
            failure_started_at=destination.failure_started_at or until)
        return 0
    PublishingDestination.objects.filter(id=destination.id).update(
        status=PublishingDestination.Status.PUBLISHING, exported_until=until, failure_started_at=None, last_error="")
    return written


def destination_export_all() -> int:
    total = 0
    for destination_id in PublishingDestination.objects.exclude(
            status=PublishingDestination.Status.STOPPED).values_list("id", flat=True):
        total += destination_export(destination_id=destination_id)
    return total
