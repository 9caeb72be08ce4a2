"""Notifications and the S3 export: one delivery service for every destination (findings.rules_models.
Destination), whether created in the console, the REST API or GuardDuty's CreatePublishingDestination.

Event destinations (webhook, Slack, EventBridge) take two stages, both Celery beat tasks (findings.tasks):

1. `publish_due` drains the FindingPublication outbox: a NEW finding is published at once, an
   UPDATED one once the detector's publishing frequency has passed since its first pending update
   (all occurrences in between merged, as GuardDuty does). Each event is queued as one Delivery row
   per matching destination (minimum severity + FindingCriteria). The queue of a destination is
   bounded: beyond VIGIL_DESTINATION_QUEUE_MAX pending events, new ones are refused and counted on
   the destination, which shows the error (never a silent drop, never unbounded growth).
2. `deliver_due` sends what is due, destination by destination, each in its own error boundary, so
   a failing destination never blocks detection (publishing only writes rows) or another
   destination. A failed send stays queued and is retried with exponential backoff.

S3 destinations are GuardDuty's findings export: every few minutes (EXPORT_INTERVAL) `deliver_due`
writes the *active* findings changed since the destination's watermark as gzip'd JSON Lines objects.
The findings table is their queue: while the bucket is down the watermark stays put (nothing lost,
nothing piles up) and the destination shows the failure. Archived findings, suppressed or archived
by hand, are never exported (GuardDuty's rule); unarchiving one makes it exportable again.

Archived findings and events (GuardDuty's EventBridge behaviour): a finding a suppression rule
archived is never published, nor are its later occurrences; a finding an analyst archived by hand
still has its later occurrences published as updates at the publishing frequency.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import hmac
import io
import ipaddress
import json
import logging
import re
import socket
import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import Account, Detector
from console.errors import ConflictError, NotFoundError, ServiceError
from findings import criteria as fc
from findings.models import Finding, FindingPublication
from findings.rules import domain_account_ids
from findings.rules_models import Delivery, Destination
from findings.serialize import finding_to_guardduty, iso

log = logging.getLogger(__name__)

TIMEOUT = 10


def _queue_max() -> int:
    return int(getattr(settings, "VIGIL_DESTINATION_QUEUE_MAX", 10000))
BATCH = 100
FREQUENCIES = {
    Detector.PublishingFrequency.FIFTEEN_MINUTES: dt.timedelta(minutes=15),
    Detector.PublishingFrequency.ONE_HOUR: dt.timedelta(hours=1),
    Detector.PublishingFrequency.SIX_HOURS: dt.timedelta(hours=6),
}
SIGNATURE_HEADER = "X-Vigil-Signature-256"
# GuardDuty exports a new active finding "within about 5 minutes"; the S3 export runs at that pace.
EXPORT_INTERVAL = dt.timedelta(minutes=5)
# Findings younger than this are left for the next export run, so a detection transaction still in
# flight (its updated_at already set, not yet committed) is not skipped for good by the watermark.
SETTLE = dt.timedelta(seconds=60)
EXPORT_OBJECT_MAX = 5000  # findings per S3 object: bounds the memory of one export run
KMS_ARN_RE = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[A-Za-z0-9/_-]{1,256}$"
BUCKET_RE = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"


class DeliveryError(Exception):
    def __init__(self, message: str, *, status_code: int | None = None, response: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.response = response


# --- events ----------------------------------------------------------------------------------

def build_event(finding: Finding, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """EventBridge's GuardDuty event: one finding per event, detail = GetFindings' JSON."""
    manager = access.managing_account(finding.account)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": manager.aws_account_id,
        "time": (now or timezone.now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": finding.region,
        "resources": [],
        "detail": finding_to_guardduty(finding),
    }


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def chat_message(event: Mapping[str, Any]) -> dict[str, Any]:
    """Slack incoming-webhook message (also accepted by Teams' incoming webhooks via `text`)."""
    d = event.get("detail") or {}
    severity = float(d.get("severity") or 0)
    label = "Critical" if severity >= 9 else "High" if severity >= 7 else "Medium" if severity >= 4 else "Low"
    text = (f"*GuardDuty finding* [{label} {severity:.1f}] {d.get('type', '')}\n{d.get('title', '')}\n"
            f"Account {d.get('accountId', '')} · {d.get('region', '')} · count {(d.get('service') or {}).get('count', 1)}"
            f" · id {d.get('id', '')}")
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{label} {severity:.1f}: {d.get('type', '')}"[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": str(d.get("title", ""))[:2900]}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": (
                f"Account {d.get('accountId', '')} · {d.get('region', '')} · finding {d.get('id', '')}")}]},
        ],
    }


# --- senders ---------------------------------------------------------------------------------

def _check_public(url: str) -> None:
    """Refuse webhook hosts that resolve to loopback, private, link-local (the instance metadata
    service) or reserved addresses: an admin-supplied URL must not reach into Vigil's own network."""
    if getattr(settings, "VIGIL_DESTINATIONS_ALLOW_PRIVATE", False):
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as exc:
        raise DeliveryError(f"Cannot resolve {host}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (address.is_private or address.is_loopback or address.is_link_local or address.is_reserved
                or address.is_multicast or address.is_unspecified):
            raise DeliveryError(f"{host} resolves to a non-public address ({address}); refused.")


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    _check_public(url)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}"[:500]) from exc
    text = response.text[:1000]
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code}", status_code=response.status_code, response=text)
    return response.status_code, text


def _send_http(destination: Destination, delivery: Delivery) -> tuple[int | None, str]:
    if destination.kind == Destination.Kind.SLACK:
        body = json.dumps(chat_message(delivery.event)).encode()
        return _post(destination.url, body, {"Content-Type": "application/json"})
    body = json.dumps(delivery.event, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Vigil-Webhook/1",
        SIGNATURE_HEADER: sign(destination.secret, body),
        "X-Vigil-Event-Id": str(delivery.event.get("id", "")),
        "X-Vigil-Delivery": str(delivery.pk or ""),
    }
    return _post(destination.url, body, headers)


def _boto_client(service: str, destination: Destination, region: str):
    """A client acting in the destination's account (its role, else Vigil's own credentials), as
    GuardDuty writes into the customer's bucket and bus; `endpoint_url` points at a compatible service."""
    from ingest.aws import BOTO_CONFIG, client_for, session_for

    config = destination.config or {}
    region = config.get("region") or region or "us-east-1"
    if config.get("endpoint_url"):
        return session_for(destination.account).client(service, region_name=region, config=BOTO_CONFIG,
                                                       endpoint_url=config["endpoint_url"])
    return client_for(destination.account, service, region)


def _send_eventbridge(destination: Destination, deliveries: list[Delivery]) -> None:
    """put_events in batches of 10; the source is vigil.guardduty ('aws.' sources are reserved by AWS)."""
    from botocore.exceptions import BotoCoreError, ClientError

    config = destination.config or {}
    client = _boto_client("events", destination, deliveries[0].region)
    for start in range(0, len(deliveries), 10):
        chunk = deliveries[start:start + 10]
        entries = [{"Source": config.get("source") or "vigil.guardduty", "DetailType": "GuardDuty Finding",
                    "Detail": json.dumps(d.event["detail"]), "EventBusName": config.get("event_bus_name") or "default",
                    "Resources": []} for d in chunk]
        try:
            answer = client.put_events(Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            raise DeliveryError(str(exc)[:500]) from exc
        if answer.get("FailedEntryCount"):
            failed = [e for e in answer.get("Entries", []) if e.get("ErrorCode")]
            raise DeliveryError(f"{answer['FailedEntryCount']} entries failed: {failed[:1]}")
        for d, entry in zip(chunk, answer.get("Entries", []), strict=False):
            d.response = f"EventId {entry.get('EventId', '')}"


def s3_key(destination: Destination, region: str, now: dt.datetime) -> str:
    """GuardDuty's export layout: <prefix>/AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/<uuid>.jsonl.gz"""
    prefix = ((destination.config or {}).get("prefix") or "").strip("/")
    key = (f"AWSLogs/{destination.account.aws_account_id}/GuardDuty/{region}/{now:%Y/%m/%d}/"
           f"{uuid.uuid4()}.jsonl.gz")
    return f"{prefix}/{key}" if prefix else key


def _put_jsonl(destination: Destination, region: str, details: list[dict[str, Any]], now: dt.datetime) -> str:
    """Write findings as one gzip JSON Lines object (SSE-KMS with the destination's key if it has one);
    returns its s3:// address."""
    from botocore.exceptions import BotoCoreError, ClientError

    config = destination.config or {}
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz:
        for detail in details:
            gz.write(json.dumps(detail, separators=(",", ":")).encode() + b"\n")
    key = s3_key(destination, region, now)
    params: dict[str, Any] = {"Bucket": config.get("bucket"), "Key": key, "Body": buffer.getvalue(),
                              "ContentType": "application/x-ndjson"}
    if config.get("kms_key_arn"):
        params.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=config["kms_key_arn"])
    if config.get("expected_bucket_owner"):
        params["ExpectedBucketOwner"] = config["expected_bucket_owner"]
    try:
        _boto_client("s3", destination, region).put_object(**params)
    except (BotoCoreError, ClientError) as exc:
        raise DeliveryError(str(exc)[:500]) from exc
    return f"s3://{config.get('bucket')}/{key}"


def _send_s3(destination: Destination, deliveries: list[Delivery]) -> None:
    """Queued events to S3 (the test button): one object per Region."""
    by_region: dict[str, list[Delivery]] = defaultdict(list)
    for d in deliveries:
        by_region[d.region or d.event.get("region", "")].append(d)
    now = timezone.now()
    for region, group in by_region.items():
        where = _put_jsonl(destination, region, [d.event["detail"] for d in group], now)
        for d in group:
            d.response = where


# --- the S3 export ---------------------------------------------------------------------------

def _export_queryset(destination: Destination, until: dt.datetime) -> QuerySet[Finding]:
    """Active findings of the destination's domain changed since its watermark, matching its filter."""
    findings = Finding.objects.filter(account_id__in=domain_account_ids(destination.account), archived=False,
                                      severity__gte=destination.min_severity, updated_at__lte=until)
    if destination.detector_id is not None:
        findings = findings.filter(region=destination.detector.region)
    if destination.exported_until is not None:
        findings = findings.filter(updated_at__gt=destination.exported_until)
    if destination.criteria:
        findings = findings.filter(fc.criteria_q(destination.criteria, allow_matches=True))
    return findings.select_related("account", "detector").order_by("updated_at", "id")


def destination_export(*, destination: Destination, until: dt.datetime | None = None) -> int:
    """Export what changed since the last run up to `until`; returns how many findings were written.

    Each object written is logged as an EXPORT delivery. A failure leaves the watermark where it was
    (the next run writes everything again from there, so nothing is lost) and marks the destination
    failing with the time of the first failure, which GuardDuty reports as
    PublishingFailureStartTimestamp."""
    until = until or timezone.now() - SETTLE
    if not destination.enabled or destination.kind != Destination.Kind.S3:
        return 0
    written, logged = 0, []
    buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def flush(region: str) -> None:
        details = buffers.pop(region)
        where = _put_jsonl(destination, region, details, until)
        logged.append(Delivery(destination=destination, kind=Delivery.Kind.EXPORT, region=region,
                               status=Delivery.Status.DELIVERED, attempts=1, next_attempt_at=until,
                               delivered_at=timezone.now(), response=where,
                               event={"object": where, "findings": len(details)}))

    try:
        for finding in _export_queryset(destination, until).iterator(chunk_size=1000):
            buffers[finding.region].append(finding_to_guardduty(finding))
            written += 1
            if len(buffers[finding.region]) >= EXPORT_OBJECT_MAX:
                flush(finding.region)
        for region in list(buffers):
            flush(region)
        if not written:
            # Verify the destination even when there is nothing to send (GuardDuty's PENDING_VERIFICATION).
            from botocore.exceptions import BotoCoreError, ClientError

            bucket = (destination.config or {}).get("bucket")
            region = destination.detector.region if destination.detector_id else ""
            try:
                _boto_client("s3", destination, region).head_bucket(Bucket=bucket)
            except (BotoCoreError, ClientError) as exc:
                raise DeliveryError(f"Bucket {bucket}: {exc}"[:500]) from exc
    except Exception as exc:
        # Any failure stays with this destination: deliver_due goes on with the others.
        if isinstance(exc, DeliveryError):
            log.warning("Export to destination %s failed: %s", destination.pk, exc)
        else:
            log.exception("Export to destination %s failed", destination.pk)
        Delivery.objects.bulk_create(logged)
        _mark_failing(destination, exc if isinstance(exc, DeliveryError) else f"{type(exc).__name__}: {exc}",
                      now=timezone.now())
        return 0
    Delivery.objects.bulk_create(logged)
    Destination.objects.filter(pk=destination.pk).update(
        exported_until=until, last_success_at=timezone.now(), status=Destination.Status.OK, failing_since=None,
        last_error="")
    return written


def _export_due(now: dt.datetime) -> QuerySet[Destination]:
    return (Destination.objects.filter(kind=Destination.Kind.S3, enabled=True)
            .filter(Q(exported_until__isnull=True) | Q(exported_until__lte=now - SETTLE - EXPORT_INTERVAL))
            .select_related("account", "detector"))


# --- destinations (services and selectors) ---------------------------------------------------

def destination_list(*, actor: Any) -> QuerySet[Destination]:
    return (Destination.objects.filter(account__in=access.accounts_visible_to(user=actor))
            .select_related("account", "detector"))


def destination_get(*, actor: Any, pk: int) -> Destination:
    found = destination_list(actor=actor).filter(pk=pk).first()
    if found is None:
        raise NotFoundError("No such destination.")
    return found


def _validate_destination(*, kind: str, url: str, config: Mapping[str, Any], min_severity: float,
                          criteria: Mapping[str, Any] | None) -> dict[str, Any]:
    if kind not in Destination.Kind.values:
        raise ServiceError(f"Unknown destination kind {kind!r}.")
    if not 1.0 <= float(min_severity) <= 10.0:
        raise ServiceError("The minimum severity is between 1.0 and 10.0.")
    if kind in (Destination.Kind.WEBHOOK, Destination.Kind.SLACK):
        parts = urlsplit(url or "")
        allow_http = getattr(settings, "VIGIL_DESTINATIONS_ALLOW_HTTP", settings.DEBUG)
        if parts.scheme not in (("https", "http") if allow_http else ("https",)) or not parts.hostname:
            raise ServiceError("A webhook URL must be an https:// URL.")
    if kind == Destination.Kind.S3:
        config = config or {}
        if not re.match(BUCKET_RE, str(config.get("bucket") or "")):
            raise ServiceError("An S3 destination needs a bucket name (3-63 lower-case letters, digits, '.', '-').")
        if config.get("kms_key_arn") and not re.match(KMS_ARN_RE, str(config["kms_key_arn"])):
            raise ServiceError("A KMS key ARN is required, e.g. arn:aws:kms:us-east-1:123456789012:key/1234abcd-….")
        if config.get("expected_bucket_owner") and not re.fullmatch(r"\d{12}", str(config["expected_bucket_owner"])):
            raise ServiceError("The expected bucket owner is a 12-digit AWS account id.")
    return fc.validate(criteria or {}, allow_matches=True) if criteria else {}


def _require_admin(actor: Any, account: Account, detector: Detector | None) -> Account:
    """Who manages a destination: an account's admins set its own detector's export (GuardDuty lets
    every account choose its export location); other destinations belong to the managing account."""
    if detector is not None:
        access.require_role(actor, detector.account, access.ADMIN_ROLES, what="set the findings export location")
        return detector.account
    return access.require_manager_role(actor, account, access.ADMIN_ROLES, what="manage finding destinations")


def _schedule_export(destination: Destination) -> None:
    """Verify a new or changed S3 destination (and export what is due) once the write commits."""
    if destination.kind == Destination.Kind.S3:
        from findings.tasks import export_findings_task

        export_findings_task.delay_on_commit(destination.pk)


@transaction.atomic
def destination_create(*, actor: Any, account: Account, name: str, kind: str, url: str = "",
                       config: Mapping[str, Any] | None = None, min_severity: float = 1.0,
                       criteria: Mapping[str, Any] | None = None, enabled: bool = True,
                       detector: Detector | None = None, tags: Mapping[str, str] | None = None) -> Destination:
    """Destinations belong to an administrator account (or a standalone one) and cover its members;
    one bound to a `detector` is that detector's S3 export (GuardDuty's publishing destination)."""
    owner = _require_admin(actor, account, detector)
    if not (name or "").strip():
        raise ServiceError("A destination needs a name.")
    validated = _validate_destination(kind=kind, url=url, config=config or {}, min_severity=min_severity,
                                      criteria=criteria)
    if detector is not None:
        if kind != Destination.Kind.S3:
            raise ServiceError("A detector's publishing destination is an S3 export.")
        if Destination.objects.select_for_update().filter(detector=detector).exists():
            raise ConflictError("This detector already has a publishing destination (the limit is one).")
    if Destination.objects.filter(account=owner, name=name).exists():
        raise ServiceError(f"A destination named {name} already exists.", code="conflict")
    destination = Destination.objects.create(account=owner, name=name.strip()[:100], kind=kind, url=url,
                                             config=dict(config or {}), min_severity=float(min_severity),
                                             criteria=validated, enabled=enabled, detector=detector,
                                             tags=dict(tags or {}))
    audit_record(account=owner, actor=actor, action="destination.created", target=destination.name, kind=kind,
                 destination_id=destination.destination_id, region=detector.region if detector else "")
    _schedule_export(destination)
    return destination


@transaction.atomic
def destination_update(*, actor: Any, destination: Destination, **changes: Any) -> Destination:
    """Change name, url, config, min_severity, criteria, enabled or tags. A changed S3 location is
    verified again (GuardDuty's PENDING_VERIFICATION until the bucket answers)."""
    _require_admin(actor, destination.account, destination.detector)
    destination = Destination.objects.select_for_update(of=("self",)).select_related("account", "detector").get(
        pk=destination.pk)
    fields = {k: changes.get(k, getattr(destination, k))
              for k in ("name", "url", "config", "min_severity", "criteria", "enabled", "tags")}
    validated = _validate_destination(kind=destination.kind, url=fields["url"], config=fields["config"],
                                      min_severity=fields["min_severity"], criteria=fields["criteria"])
    changed = {k for k, v in {**fields, "criteria": validated}.items() if getattr(destination, k) != v}
    if not changed:
        return destination
    for key, value in {**fields, "criteria": validated}.items():
        setattr(destination, key, value)
    if destination.kind == Destination.Kind.S3 and changed & {"config", "enabled"}:
        destination.last_success_at, destination.status = None, Destination.Status.OK
        destination.failing_since, destination.last_error = None, ""
    destination.save()
    audit_record(account=destination.account, actor=actor, action="destination.updated", target=destination.name,
                 changed=sorted(changed))
    if changed - {"tags", "name"}:
        _schedule_export(destination)
    return destination


@transaction.atomic
def destination_delete(*, actor: Any, destination: Destination) -> None:
    _require_admin(actor, destination.account, destination.detector)
    audit_record(account=destination.account, actor=actor, action="destination.deleted", target=destination.name,
                 destination_id=destination.destination_id)
    destination.delete()


def destination_test(*, actor: Any, destination: Destination) -> Delivery:
    """Send one sample event now (a `[SAMPLE]` finding) and return the logged attempt."""
    _require_admin(actor, destination.account, destination.detector)
    now = timezone.now()
    region = ((destination.config or {}).get("region") or (destination.detector.region if destination.detector_id
                                                           else settings.VIGIL_REGIONS[0]))
    detail = {
        "schemaVersion": "2.0", "accountId": destination.account.aws_account_id, "region": region,
        "partition": "aws", "id": uuid.uuid4().hex, "type": "Recon:EC2/PortProbeUnprotectedPort", "severity": 2.0,
        "title": "[SAMPLE] Test event from Vigil", "description": "A test of this destination.",
        "createdAt": iso(now), "updatedAt": iso(now), "resource": {"resourceType": "Instance"},
        "service": {"serviceName": "guardduty", "archived": False, "count": 1,
                    "additionalInfo": {"value": json.dumps({"sample": True}), "type": "default"}},
    }
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
             "account": destination.account.aws_account_id, "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "region": region, "resources": [], "detail": detail}
    delivery = Delivery.objects.create(destination=destination, kind=Delivery.Kind.TEST, region=region, event=event,
                                       next_attempt_at=now)
    _attempt(destination, [delivery], now=now, final=True)
    delivery.refresh_from_db()
    return delivery


# --- publishing: outbox -> queued deliveries --------------------------------------------------

def _frequency(finding: Finding, cache: dict[tuple[int, str], dt.timedelta]) -> dt.timedelta:
    manager = access.managing_account(finding.account)
    key = (manager.id, finding.region)
    if key not in cache:
        detector = Detector.objects.filter(account=manager, region=finding.region).first() or finding.detector
        value = detector.finding_publishing_frequency if detector else Detector.PublishingFrequency.SIX_HOURS
        cache[key] = FREQUENCIES.get(value, FREQUENCIES[Detector.PublishingFrequency.SIX_HOURS])
    return cache[key]


def _wants(destination: Destination, finding: Finding, values: dict[str, Any]) -> bool:
    if not destination.enabled or finding.severity < destination.min_severity:
        return False
    try:
        return fc.criteria_match(destination.criteria, values) if destination.criteria else True
    except fc.CriteriaError:
        return False


def enqueue(destination: Destination, *, event: dict[str, Any], kind: str, finding: Finding | None,
            now: dt.datetime) -> Delivery | None:
    """Queue one event, unless the destination's queue is full: then refuse it visibly."""
    pending = Delivery.objects.filter(destination=destination, status=Delivery.Status.PENDING).count()
    if pending >= _queue_max():
        Destination.objects.filter(pk=destination.pk).update(
            refused_count=F("refused_count") + 1, status=Destination.Status.QUEUE_FULL,
            last_error=f"Queue full ({pending} events waiting): new events are refused until it drains.")
        return None
    return Delivery.objects.create(destination=destination, finding=finding, kind=kind, region=event["region"],
                                   event=event, next_attempt_at=now)


def publish_due(*, now: dt.datetime | None = None, limit: int = 2000) -> int:
    """Turn due outbox rows into queued deliveries. Returns how many findings were published."""
    now = now or timezone.now()
    shortest = min(FREQUENCIES.values())
    rows = list(
        FindingPublication.objects.filter(published_at__isnull=True)
        .filter(kind=FindingPublication.Kind.NEW)
        .select_related("finding__account", "finding__detector")
        .order_by("created_at", "id")[:limit]
    ) + list(
        FindingPublication.objects.filter(published_at__isnull=True, kind=FindingPublication.Kind.UPDATED,
                                          created_at__lte=now - shortest)
        .select_related("finding__account", "finding__detector")
        .order_by("created_at", "id")[:limit]
    )
    frequencies: dict[tuple[int, str], dt.timedelta] = {}
    destinations: dict[int, list[Destination]] = {}
    published = 0
    for row in rows:
        finding = row.finding
        if row.kind == FindingPublication.Kind.UPDATED and row.created_at + _frequency(finding, frequencies) > now:
            continue
        with transaction.atomic():
            manager = access.managing_account(finding.account)
            if manager.id not in destinations:
                # S3 exports read the findings table themselves (destination_export).
                destinations[manager.id] = list(Destination.objects.filter(account=manager, enabled=True)
                                                .exclude(kind=Destination.Kind.S3).select_related("account"))
            values = fc.finding_values(finding)
            wanted = [d for d in destinations[manager.id] if _wants(d, finding, values)]
            if wanted:
                event = build_event(finding, now=now)
                for destination in wanted:
                    enqueue(destination, event=event, kind=row.kind, finding=finding, now=now)
            FindingPublication.objects.filter(pk=row.pk).update(published_at=now)
        published += 1
    return published


# --- delivery --------------------------------------------------------------------------------

def backoff(attempts: int) -> dt.timedelta:
    base = getattr(settings, "VIGIL_DELIVERY_BACKOFF_BASE_SECONDS", 30)
    ceiling = getattr(settings, "VIGIL_DELIVERY_BACKOFF_MAX_SECONDS", 3600)
    return dt.timedelta(seconds=min(ceiling, base * (2 ** max(0, attempts - 1))))


def _attempt(destination: Destination, deliveries: list[Delivery], *, now: dt.datetime, final: bool = False) -> bool:
    """Send a batch in order; stop at the first failure and leave the rest queued behind it."""
    sent: list[Delivery] = []
    failure: DeliveryError | None = None
    failed: Delivery | None = None
    try:
        if destination.kind in (Destination.Kind.WEBHOOK, Destination.Kind.SLACK):
            for delivery in deliveries:
                try:
                    code, text = _send_http(destination, delivery)
                except DeliveryError as exc:
                    failure, failed = exc, delivery
                    break
                delivery.status_code, delivery.response = code, text
                sent.append(delivery)
        elif destination.kind == Destination.Kind.EVENTBRIDGE:
            _send_eventbridge(destination, deliveries)
            sent = list(deliveries)
        elif destination.kind == Destination.Kind.S3:
            _send_s3(destination, deliveries)
            sent = list(deliveries)
    except DeliveryError as exc:
        failure, failed = exc, deliveries[0]
    except Exception as exc:
        log.exception("destination %s failed", destination.pk)
        failure, failed = DeliveryError(f"{type(exc).__name__}: {exc}"[:500]), deliveries[0]
    for delivery in sent:
        Delivery.objects.filter(pk=delivery.pk).update(
            status=Delivery.Status.DELIVERED, attempts=F("attempts") + 1, delivered_at=now,
            status_code=delivery.status_code, response=delivery.response[:1000], error="")
    if sent:
        Destination.objects.filter(pk=destination.pk).update(last_success_at=now)
    if failure is None:
        Destination.objects.filter(pk=destination.pk).exclude(status=Destination.Status.QUEUE_FULL).update(
            status=Destination.Status.OK, failing_since=None, last_error="")
        if sent:
            pending = Delivery.objects.filter(destination=destination, status=Delivery.Status.PENDING).count()
            if pending < _queue_max():
                Destination.objects.filter(pk=destination.pk, status=Destination.Status.QUEUE_FULL).update(
                    status=Destination.Status.OK, last_error="")
        return True
    assert failed is not None
    attempts = failed.attempts + 1
    if final:
        Delivery.objects.filter(pk=failed.pk).update(status=Delivery.Status.FAILED, attempts=attempts,
                                                     status_code=failure.status_code, response=failure.response,
                                                     error=str(failure))
        return False
    retry_at = now + backoff(attempts)
    Delivery.objects.filter(pk=failed.pk).update(attempts=attempts, next_attempt_at=retry_at,
                                                 status_code=failure.status_code, response=failure.response,
                                                 error=str(failure))
    rest = [d.pk for d in deliveries if d.pk != failed.pk and d not in sent]
    Delivery.objects.filter(pk__in=rest).update(next_attempt_at=retry_at)
    _mark_failing(destination, f"{failure} (retry at {retry_at:%H:%M:%S})", now=now)
    return False


def _mark_failing(destination: Destination, error: Any, *, now: dt.datetime) -> None:
    """Show the failure on the destination, keeping the time of the first one (a full queue stays
    the more urgent status)."""
    Destination.objects.filter(pk=destination.pk).update(last_error=str(error)[:1000])
    Destination.objects.filter(pk=destination.pk).exclude(status=Destination.Status.QUEUE_FULL).update(
        status=Destination.Status.FAILING)
    Destination.objects.filter(pk=destination.pk, failing_since__isnull=True).update(failing_since=now)


def deliver_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due delivery and run every due S3 export, destination by destination, each in its
    own error boundary. Returns counts for logging and tests."""
    now = now or timezone.now()
    outcome = {"delivered": 0, "failed_destinations": 0}
    for destination in _export_due(now):
        written = destination_export(destination=destination, until=now - SETTLE)
        outcome["delivered"] += written
        if Destination.objects.filter(pk=destination.pk, status=Destination.Status.FAILING).exists():
            outcome["failed_destinations"] += 1
    due = (Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
           .values_list("destination_id", flat=True).distinct())
    for destination in Destination.objects.filter(pk__in=list(due)).select_related("account"):
        batch = list(Delivery.objects.filter(destination=destination, status=Delivery.Status.PENDING,
                                             next_attempt_at__lte=now).order_by("created_at", "id")[:BATCH])
        if not batch:
            continue
        if _attempt(destination, batch, now=now):
            outcome["delivered"] += len(batch)
        else:
            outcome["failed_destinations"] += 1
            outcome["delivered"] += Delivery.objects.filter(pk__in=[d.pk for d in batch],
                                                            status=Delivery.Status.DELIVERED).count()
    return outcome
