"""Writes for ingestion: log sources, discovery, processing one object exactly once in effect,
usage metering, inventory.

Exactly-once in effect: an object's findings, usage, learned inventory and rule state are written in
the same transaction that marks its ledger row (account, bucket, key, ETag) done. A re-delivered
task, a second listing or a retry after a killed worker finds the row done (or waits on its lock)
and changes nothing.

Nothing lost: discovery writes each object's pending ledger row in the transaction that moves the
checkpoint past it, so the ledger, not the broker, is the record of work to do. A task lost with a
killed worker or a restarted broker leaves its row pending; the sweeper dispatches it again.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.db.models import Case, CharField, F, JSONField, Q, Value, When
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import Account, Detector
from console.db import upsert, upsert_columns
from console.errors import ServiceError
from findings.services import FindingDraft, UpsertResult, findings_upsert_many
from ingest.inventory import Inventory
from ingest.models import (
    InventoryBucket,
    InventoryInstance,
    InventoryLink,
    InventoryPrincipal,
    LogKind,
    LogSource,
    ProcessedObject,
    SourceCheckpoint,
    UsageRecord,
)
from ingest.parsers import UnreadableObject, opened
from ingest.pipeline import ObjectResult, Pipeline
from ingest.rules import Detection
from ingest.state import DatabaseStateStore

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = getattr(settings, "VIGIL_INGEST_MAX_ATTEMPTS", 3)
LIST_MAX_KEYS = getattr(settings, "VIGIL_INGEST_LIST_MAX_KEYS", 10000)
LIST_PAGE_KEYS = 1000  # S3's most per ListObjectsV2 page; each page is dispatched as soon as it is listed
STALE_SECONDS = getattr(settings, "VIGIL_INGEST_STALE_SECONDS", 1800)


EXPIRED_CODES = {"ExpiredToken", "ExpiredTokenException", "InvalidToken", "RequestExpired"}


class RetryableObjectError(Exception):
    """Reading the object failed in a way a later attempt may not (counted against MAX_ATTEMPTS)."""


# --- log sources --------------------------------------------------------------------------------


@transaction.atomic
def log_source_create(*, actor: Any, detector: Detector, kind: str, bucket: str, key_prefix: str = "",
                      sqs_queue_url: str = "") -> LogSource:
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="configure log sources")
    if kind not in LogKind.values:
        raise ServiceError(f"Kind must be one of {', '.join(LogKind.values)}.")
    bucket = bucket.strip()
    if not 3 <= len(bucket) <= 63:
        raise ServiceError("Give the S3 bucket name (3 to 63 characters).")
    if key_prefix and not key_prefix.endswith("/"):
        key_prefix += "/"
    source, created = LogSource.objects.get_or_create(
        detector=detector, kind=kind, bucket=bucket, key_prefix=key_prefix, defaults={"sqs_queue_url": sqs_queue_url}
    )
    if created:
        audit_record(account=detector.account, actor=actor, action="ingest.source_created",
                     target=f"{kind} s3://{bucket}/{key_prefix}", region=detector.region)
    return source


def source_prefixes(source: LogSource, list_prefixes: Callable[[str], list[str]]) -> list[str]:
    """The S3 prefixes AWS delivers this source's logs under (guardduty.md layouts)."""
    account = source.detector.account.aws_account_id
    region = source.detector.region
    base = f"{source.key_prefix}AWSLogs/{account}/"
    if source.kind == LogKind.CLOUDTRAIL:
        return [f"{base}CloudTrail/{region}/"]
    if source.kind == LogKind.FLOW:
        return [f"{base}vpcflowlogs/{region}/"]
    # Resolver logs: AWSLogs/{account}/vpcdnsquerylogs/{vpc-id}/yyyy/mm/dd/…, one prefix per VPC.
    return list_prefixes(f"{base}vpcdnsquerylogs/")


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    etag: str
    size: int = 0  # bytes as stored (gzip'd), when the listing or notification says


# Small and medium objects are analysed in batches: one task, one pipeline pass and one
# transaction for up to BATCH_OBJECTS of them. A quiet account's CloudTrail writes a few events
# every five minutes; a busy one writes objects of a few thousand events (300 KB gzip'd), whose
# fixed costs (a frame per rule and model, a dozen queries per object) were still a third of
# their CPU alone. BATCH_BYTES keeps batches small enough to spread over the workers: a megabyte
# of gzip'd resolver logs is already 150k queries. CloudTrail packs far fewer records per gzip'd
# byte (~1 KB an event, ~13x): 3 MB is ~40k events, one frame (BATCH_EVENTS) and a fraction of a
# second of work. At 1 MB its batches of 3 medium objects spent a tenth of their CPU again on
# per-frame costs (measured: 1.61 -> 1.45 s per 200k events at 2 MB, 1.43 at 4 MB).
BATCH_OBJECT_BYTES = 512 * 1024
BATCH_OBJECTS = 250
BATCH_BYTES = 1024 * 1024
BATCH_BYTES_BY_KIND = {LogKind.CLOUDTRAIL.value: 3 * 1024 * 1024}
FETCH_THREADS = 8  # concurrent GETs of a batch (botocore pools 10 connections per client)


class _Sized(Protocol):
    size: int


SizedT = TypeVar("SizedT", bound=_Sized)


def refs_batched(refs: Sequence[SizedT], kind: str = "") -> list[list[SizedT]]:
    """Refs (objects, or local files: anything with a `size`) of one log `kind` in dispatch order:
    small ones grouped (in key order, so time order), the rest alone."""
    batch_bytes = BATCH_BYTES_BY_KIND.get(kind, BATCH_BYTES)
    out: list[list[SizedT]] = []
    batch: list[SizedT] = []
    size = 0
    for ref in refs:
        if not 0 < ref.size <= BATCH_OBJECT_BYTES:
            out.append([ref])
            continue
        if batch and (len(batch) >= BATCH_OBJECTS or size + ref.size > batch_bytes):
            out.append(batch)
            batch, size = [], 0
        batch.append(ref)
        size += ref.size
    if batch:
        out.append(batch)
    return out


def source_discover(*, source: LogSource, s3: Any = None, sqs: Any = None,
                    on_listed: Callable[[list[ObjectRef]], None] | None = None) -> list[ObjectRef]:
    """New objects of a source since its checkpoints (or from its SQS queue). Moves the checkpoints.

    `on_listed` receives each listed page's (or received message batch's) new objects as soon as the
    ledger holds them, so a backlog's first objects are processed while the listing goes on (10,000
    keys take seconds to list). A suspended detector lists nothing and keeps its checkpoints, so it
    resumes where it stopped.
    """
    from ingest.aws import client_for

    source = LogSource.objects.select_related("detector__account").get(pk=source.pk)
    detector = source.detector
    if not detector.is_enabled:
        return []
    if source.sqs_queue_url:
        return _discover_sqs(source, sqs or client_for(detector.account, "sqs", detector.region), on_listed)
    s3 = s3 or client_for(detector.account, "s3", detector.region)

    def list_prefixes(prefix: str) -> list[str]:
        found: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=source.bucket, Prefix=prefix, Delimiter="/"):
            found.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
        return found

    refs: list[ObjectRef] = []
    newest = source.newest_object_modified
    try:
        prefixes = source_prefixes(source, list_prefixes)
        for prefix in prefixes:
            checkpoint, _ = SourceCheckpoint.objects.get_or_create(source=source, prefix=prefix)
            params: dict[str, Any] = {"Bucket": source.bucket, "Prefix": prefix}
            start_after = listing_start(checkpoint.start_after)
            if start_after:
                params["StartAfter"] = start_after
            last_key = checkpoint.start_after
            for page in s3.get_paginator("list_objects_v2").paginate(**params,
                                                                      PaginationConfig={"PageSize": LIST_PAGE_KEYS}):
                items = [item for item in page.get("Contents", [])
                         if not item["Key"].endswith("/") and "CloudTrail-Digest" not in item["Key"]]
                known = _ledger_known(source, [item["Key"] for item in items])
                page_start = len(refs)
                for item in items:
                    etag = item["ETag"].strip('"')
                    if (item["Key"], etag) in known:
                        continue
                    refs.append(ObjectRef(source.bucket, item["Key"], etag, item.get("Size", 0)))
                    modified = item["LastModified"]
                    newest = modified if newest is None or modified > newest else newest
                # The ledger first: the checkpoint never moves past an object the ledger lacks, and a
                # listing that fails on a later page leaves these pending (re-listing skips them).
                ledger_pending_add(source=source, refs=refs[page_start:])
                if on_listed and len(refs) > page_start:
                    on_listed(refs[page_start:])
                if page.get("Contents"):
                    last_key = max(last_key, page["Contents"][-1]["Key"])
                if len(refs) >= LIST_MAX_KEYS:
                    break
            if last_key != checkpoint.start_after:
                checkpoint.start_after = last_key
                checkpoint.save(update_fields=["start_after", "updated_at"])
    except Exception as exc:
        _source_error(source, f"listing s3://{source.bucket}: {exc}")
        raise
    LogSource.objects.filter(pk=source.pk).update(newest_object_modified=newest, last_listed_at=timezone.now())
    return refs


_DAY_FOLDER = re.compile(r"^(?P<head>.*/)(?P<day>\d{4}/\d{2}/\d{2})/")


def listing_start(checkpoint_key: str) -> str:
    """Where a listing starts: the previous day's folder of the checkpoint, not the checkpoint.

    Keys sort by name, not by delivery: CloudTrail delivers an object late under an earlier
    timestamp, and a second flow log's objects sort before the first one's (by flow-log id). Listing
    only after the last key seen would skip them for good; re-listing a day back (the ledger skips
    what is known) finds everything delivered up to a day late."""
    match = _DAY_FOLDER.match(checkpoint_key)
    if not match:
        return checkpoint_key
    try:
        day = datetime.strptime(match.group("day"), "%Y/%m/%d").date()
    except ValueError:
        return checkpoint_key
    return f"{match.group('head')}{day - timedelta(days=1):%Y/%m/%d}/"


def _ledger_known(source: LogSource, keys: list[str]) -> set[tuple[str, str]]:
    """(key, etag) pairs of these keys that the ledger already holds, whatever their status."""
    if not keys:
        return set()
    return set(ProcessedObject.objects.filter(account_id=source.detector.account_id, bucket=source.bucket,
                                              key__in=keys).values_list("key", "etag"))


def _discover_sqs(source: LogSource, sqs: Any,
                  on_listed: Callable[[list[ObjectRef]], None] | None = None) -> list[ObjectRef]:
    """S3 event notifications from the source's queue; messages are deleted once the refs are taken
    (the ledger makes a duplicate notification harmless)."""
    import json
    from urllib.parse import unquote_plus

    refs: list[ObjectRef] = []
    for _ in range(10):
        messages = sqs.receive_message(QueueUrl=source.sqs_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            break
        received_start = len(refs)
        for message in messages:
            message_start = len(refs)
            try:
                body = json.loads(message["Body"])
                if "Message" in body and "Records" not in body:  # delivered through SNS
                    body = json.loads(body["Message"])
                for record in body.get("Records", []):
                    if not str(record.get("eventName", "")).startswith("ObjectCreated"):
                        continue
                    obj = record["s3"]["object"]
                    key = unquote_plus(obj["key"])
                    if key.startswith(f"{source.key_prefix}AWSLogs/") and "CloudTrail-Digest" not in key:
                        refs.append(ObjectRef(record["s3"]["bucket"]["name"], key, str(obj.get("eTag", "")).strip('"'),
                                              int(obj.get("size") or 0)))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring a malformed S3 notification on %s: %s", source.sqs_queue_url, exc)
            ledger_pending_add(source=source, refs=refs[message_start:])  # before the message is gone
            sqs.delete_message(QueueUrl=source.sqs_queue_url, ReceiptHandle=message["ReceiptHandle"])
        if on_listed and len(refs) > received_start:
            on_listed(refs[received_start:])
    LogSource.objects.filter(pk=source.pk).update(last_listed_at=timezone.now())
    return refs


def ledger_pending_add(*, source: LogSource, refs: list[ObjectRef]) -> None:
    """Record discovered objects as pending (rows that exist, done or not, are left as they are)."""
    same = ProcessedObject(account_id=source.detector.account_id, source=source, kind=source.kind,
                           dispatched_at=timezone.now())
    keys = sorted({(r.bucket, r.key, r.etag) for r in refs})
    for start in range(0, len(keys), 1000):  # bounded statements: SQLite's VALUES path has 17 parameters a row
        upsert_columns(ProcessedObject, same=same, conflict=["account", "bucket", "key", "etag"],
                       per_row=_ledger_keys(keys[start:start + 1000]))


def _ledger_keys(keys: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    return {"bucket": [k[0] for k in keys], "key": [k[1] for k in keys], "etag": [k[2] for k in keys]}


def ledger_stale_dispatch(*, stale_seconds: int = STALE_SECONDS, limit: int = LIST_MAX_KEYS) -> list[tuple[int, ObjectRef]]:
    """Pending objects whose task was lost: neither dispatched nor taken up by a worker for
    `stale_seconds`, and not being processed now (a worker's row lock skips them). Marks them
    dispatched and returns (source id, object) for the caller to queue again; a duplicate delivery
    is harmless (the ledger)."""
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    with transaction.atomic():
        stale = list(
            ProcessedObject.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=ProcessedObject.Status.PENDING, source__isnull=False, created_at__lt=cutoff,
                    source__detector__status=Detector.Status.ENABLED)
            .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=cutoff))
            .filter(Q(started_at__isnull=True) | Q(started_at__lt=cutoff))
            .order_by("pk").values_list("pk", "source_id", "bucket", "key", "etag")[:limit]
        )
        ProcessedObject.objects.filter(pk__in=[row[0] for row in stale]).update(dispatched_at=timezone.now())
        per_source: dict[int, int] = {}
        for _, source_id, *_ in stale:
            per_source[source_id] = per_source.get(source_id, 0) + 1
        for source_id, n in per_source.items():  # shown on the source's status page
            _source_error(LogSource(pk=source_id), f"{n} object(s) whose task was lost (worker or broker restarted) "
                                                   "were queued again")
    if stale:
        logger.warning("re-dispatching %s pending object(s) whose task was lost", len(stale))
    return [(source_id, ObjectRef(bucket, key, etag)) for _, source_id, bucket, key, etag in stale]


def _source_error(source: LogSource, message: str) -> None:
    LogSource.objects.filter(pk=source.pk).update(last_error=message[:2000], last_error_at=timezone.now())


# --- processing one object ------------------------------------------------------------------------


def inventory_load(*, account_id: int, region: str) -> Inventory:
    """The account's inventory in the region: instances and links in one query (UNION ALL; a link
    row is the one with an instance id in the third column)."""
    inventory = Inventory()
    instances = InventoryInstance.objects.filter(account_id=account_id, region=region).annotate(
        link_to=Value(None, output_field=CharField())).values_list("instance_id", "details", "link_to")
    links = InventoryLink.objects.filter(account_id=account_id, region=region).annotate(
        no_details=Value(None, output_field=JSONField())).values_list("value", "no_details", "instance_id")
    for name, details, link_to in instances.union(links, all=True):
        if link_to is None:
            inventory.instances[name] = details
        else:
            inventory.links[name] = link_to
    return inventory


def inventory_save(*, inventory: Inventory, account_id: int, region: str, learned_from: str = "logs") -> None:
    if not inventory.dirty_instances and not inventory.dirty_links:
        return
    instances = [InventoryInstance(account_id=account_id, region=region, instance_id=i, details=inventory.instances[i],
                                   learned_from=learned_from) for i in sorted(inventory.dirty_instances)]
    InventoryInstance.objects.bulk_create(instances, update_conflicts=True, unique_fields=["account", "region", "instance_id"],
                                          update_fields=["details", "learned_from", "updated_at"])
    links = [InventoryLink(account_id=account_id, region=region, value=v, instance_id=inventory.links[v])
             for v in sorted(inventory.dirty_links)]
    InventoryLink.objects.bulk_create(links, update_conflicts=True, unique_fields=["account", "region", "value"],
                                      update_fields=["instance_id", "updated_at"])
    inventory.dirty_instances.clear()
    inventory.dirty_links.clear()


def usage_add(*, account_id: int, usage: dict[tuple[str, str, date, str], list[int]]) -> None:
    """Add metered events/bytes in one INSERT … ON CONFLICT DO UPDATE that adds to existing rows, so
    concurrent workers add up. Rows go in key order: two workers lock shared rows in the same order."""
    totals: dict[tuple[str, str, date, str], list[int]] = {}
    for (data_source, region, day, resource), (events, size) in usage.items():
        if events or size:
            total = totals.setdefault((region, data_source, day, resource[:255]), [0, 0])
            total[0] += events
            total[1] += size
    if not totals:
        return
    rows = [UsageRecord(account_id=account_id, region=region, data_source=data_source, day=day, resource=resource,
                        events=events, bytes=size)
            for (region, data_source, day, resource), (events, size) in sorted(totals.items())]
    upsert(UsageRecord, rows, conflict=["account", "region", "data_source", "day", "resource"],
           update="{events} = {table}.{events} + EXCLUDED.{events}, {bytes} = {table}.{bytes} + EXCLUDED.{bytes}")


def detections_to_drafts(detections: list[Detection], *, account: Account,
                         detectors_by_region: dict[str, int | None]) -> list[FindingDraft]:
    drafts = []
    for d in detections:
        region = d.region or ""
        drafts.append(FindingDraft(
            account_id=account.id, region=region, type=d.type, severity=d.resolved_severity(), dedup_key=d.dedup_key,
            title=d.title, description=d.description, resource=d.resource, service=d.service,
            first_seen=_aware(d.first_seen), last_seen=_aware(d.last_seen), count=d.count,
            detector_id=detectors_by_region.get(region), evidence_events=_jsonable(d.evidence),
        ))
    return drafts


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jsonable(rows: list[Any]) -> list[Any]:
    out = []
    for row in rows:
        if isinstance(row, dict):
            out.append({k: (v.isoformat() if isinstance(v, datetime | date) else v) for k, v in row.items()})
        else:
            out.append(row)
    return out


def result_store(*, result: ObjectResult, account: Account, default_detector: Detector | None,
                 create_detectors: bool = False) -> UpsertResult:
    """Write an analysed object's findings and usage (inside the caller's transaction)."""
    regions = {d.region for d in result.detections if d.region}
    detectors: dict[str, int | None] = {}
    if default_detector is not None and default_detector.account_id == account.id and default_detector.region in regions:
        detectors[default_detector.region] = default_detector.id  # (account, region) is unique: no lookup
    if regions - set(detectors):
        detectors.update(Detector.objects.filter(account=account, region__in=regions - set(detectors))
                         .values_list("region", "id"))
    if create_detectors:
        for region in regions - set(detectors):
            detectors[region] = Detector.objects.get_or_create(account=account, region=region)[0].id
    if default_detector is not None:
        for region in regions - set(detectors):
            detectors[region] = default_detector.id if region == default_detector.region else None
    upserted = findings_upsert_many(drafts=detections_to_drafts(result.detections, account=account,
                                                                  detectors_by_region=detectors))
    usage_add(account_id=account.id, usage=result.usage)
    return upserted


def anomaly_stage_for_workers() -> Any:
    """Baselines in the database, locked and saved inside the object's transaction (or None)."""
    if not getattr(settings, "VIGIL_ANOMALY_ENABLED", True):
        return None
    from ingest.anomaly.config import config_from_settings
    from ingest.anomaly.services import DatabaseAnomalyStage

    return DatabaseAnomalyStage(config=config_from_settings())


def _ledger_take(*, source: LogSource, refs: list[ObjectRef]) -> list[int]:
    """Ids of the refs' ledger rows that are pending, stamped taken up (started_at: the sweeper leaves
    them alone while this attempt may still run). One statement, committed before the caller's
    transaction: inserts the rows discovery wrote (a direct call may not have), in key order so that
    concurrent batches lock shared rows in the same order, and stamps only pending rows."""
    same = ProcessedObject(account_id=source.detector.account_id, source=source, kind=source.kind,
                           started_at=timezone.now())
    taken = upsert_columns(ProcessedObject, same=same, per_row=_ledger_keys(sorted({(r.bucket, r.key, r.etag) for r in refs})),
                            conflict=["account", "bucket", "key", "etag"], update="{started_at} = EXCLUDED.{started_at}",
                            where="{table}.{status} = %s", params=[ProcessedObject.Status.PENDING], returning="{id}")
    return [row[0] for row in taken]


def object_process(*, source: LogSource, bucket: str, key: str, etag: str,
                   open_body: Callable[[], IO[bytes]] | None = None, matcher: Any = None) -> str:
    """Process one S3 object of a source. Returns the ledger status ("done", "failed", "skipped",
    "suspended"); raises RetryableObjectError when a bounded retry should follow."""
    from ingest.aws import client_for

    source = LogSource.objects.select_related("detector__account").get(pk=source.pk)
    detector, account = source.detector, source.detector.account
    if not detector.is_enabled:
        return "suspended"
    taken = _ledger_take(source=source, refs=[ObjectRef(bucket, key, etag)])
    if not taken:
        return "skipped"
    ledger = ProcessedObject(pk=taken[0])
    if open_body is None:
        def open_body() -> IO[bytes]:
            s3 = client_for(account, "s3", detector.region)
            params = {"Bucket": bucket, "Key": key}
            if etag:
                params["IfMatch"] = etag
            return s3.get_object(**params)["Body"]
    try:
        with transaction.atomic():
            locked = ProcessedObject.objects.select_for_update().get(pk=ledger.pk)
            if locked.status != ProcessedObject.Status.PENDING:
                return "skipped"  # another worker finished it while we waited for the lock
            if matcher is None:
                from intel.matching import matcher_for

                matcher = matcher_for(account_id=account.id, region=detector.region)
            inventory = inventory_load(account_id=account.id, region=detector.region)
            state = DatabaseStateStore(account_id=account.id, region=detector.region)
            with opened(open_body) as body:
                result = Pipeline(matcher=matcher, inventory=inventory, state=state,
                                  anomaly=anomaly_stage_for_workers()).process(
                    source.kind, body, aws_account_id=account.aws_account_id, region=detector.region)
            upserted = result_store(result=result, account=account, default_detector=detector)
            inventory_save(inventory=inventory, account_id=account.id, region=detector.region)
            state.flush()
            now = timezone.now()
            locked.status = ProcessedObject.Status.DONE
            locked.attempts += 1
            locked.records, locked.malformed = result.stats.records, result.stats.malformed
            locked.bytes_uncompressed, locked.findings = result.stats.bytes_uncompressed, upserted.total
            locked.processed_at, locked.error = now, ""
            locked.save(update_fields=["status", "attempts", "records", "malformed", "bytes_uncompressed", "findings",
                                       "processed_at", "error"])
            _source_progress(source, key=key, result=result)
            return "done"
    except UnreadableObject as exc:
        return _object_attempt_failed(ledger, source, f"{key}: {exc.reason}")
    except (BotoCoreError, ClientError) as exc:
        # S3 unavailable, throttling, or the role's session no longer valid: the task retries with
        # backoff; the source's status shows why its objects are waiting.
        _source_error(source, f"reading s3://{bucket}/{key}: {exc}")
        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in EXPIRED_CODES:
            from ingest.aws import forget_session

            forget_session(account)  # assume the role afresh on the retry
        raise


def objects_process_batch(*, source: LogSource, refs: list[ObjectRef],
                          fetch: Callable[[list[ProcessedObject]], list[bytes]] | None = None,
                          matcher: Any = None) -> int:
    """Process many small objects of a source together: their records in one pipeline pass, their
    findings, usage, state and ledger rows in one transaction (exactly once in effect, as for one
    object). Returns how many were processed here. Any failure rolls the whole batch back and
    raises: the caller then sends each object its own way (object_process: its own retries and
    failure count). `fetch` reads the rows' bodies (default: concurrent GETs from the source's S3)."""
    from ingest.aws import client_for
    from intel.matching import matcher_for

    source = LogSource.objects.select_related("detector__account").get(pk=source.pk)
    detector, account = source.detector, source.detector.account
    if not detector.is_enabled or not refs:
        return 0
    taken = _ledger_take(source=source, refs=refs)
    if not taken:
        return 0
    with transaction.atomic():
        rows = list(ProcessedObject.objects.select_for_update().filter(pk__in=taken, status=ProcessedObject.Status.PENDING)
                    .order_by("key", "pk"))
        if not rows:
            return 0
        bodies = fetch(rows) if fetch else _fetch_all(client_for(account, "s3", detector.region), rows)
        inventory = inventory_load(account_id=account.id, region=detector.region)
        state = DatabaseStateStore(account_id=account.id, region=detector.region)
        matcher = matcher or matcher_for(account_id=account.id, region=detector.region)
        pipeline = Pipeline(matcher=matcher, inventory=inventory,
                            state=state, anomaly=anomaly_stage_for_workers())
        result, per_object = pipeline.process_many(
            source.kind, [(str(row.pk), lambda body=body: io.BytesIO(body)) for row, body in zip(rows, bodies, strict=True)],
            aws_account_id=account.aws_account_id, region=detector.region)
        upserted = result_store(result=result, account=account, default_detector=detector)
        inventory_save(inventory=inventory, account_id=account.id, region=detector.region)
        state.flush()
        stats = [per_object[str(row.pk)] for row in rows]
        # One INSERT … ON CONFLICT DO UPDATE for all rows (they exist, locked by us): bulk_update's
        # CASE per field and row costs more than the rest of the batch's writes. `findings`: what
        # the batch the object was analysed in upserted.
        done = ProcessedObject(account_id=account.id, source=source, kind=source.kind, status=ProcessedObject.Status.DONE,
                               processed_at=timezone.now(), findings=upserted.total)
        upsert_columns(
            ProcessedObject, same=done,
            per_row={**_ledger_keys([(row.bucket, row.key, row.etag) for row in rows]),
                     "records": [s.records for s in stats], "malformed": [s.malformed for s in stats],
                     "bytes_uncompressed": [s.bytes_uncompressed for s in stats]},
            conflict=["account", "bucket", "key", "etag"],
            update="{status} = EXCLUDED.{status}, {attempts} = {table}.{attempts} + 1, "
                   "{processed_at} = EXCLUDED.{processed_at}, {error} = '', {records} = EXCLUDED.{records}, "
                   "{malformed} = EXCLUDED.{malformed}, {bytes_uncompressed} = EXCLUDED.{bytes_uncompressed}, "
                   "{findings} = EXCLUDED.{findings}")
        _source_progress(source, key=rows[-1].key, result=result, objects=len(rows))
    return len(rows)


def _fetch_all(s3: Any, rows: list[ProcessedObject]) -> list[bytes]:
    """The batch's objects, read concurrently: each GET is a round trip that mostly waits on S3."""
    from concurrent.futures import ThreadPoolExecutor

    def fetch(row: ProcessedObject) -> bytes:
        params = {"Bucket": row.bucket, "Key": row.key, **({"IfMatch": row.etag} if row.etag else {})}
        return s3.get_object(**params)["Body"].read()

    with ThreadPoolExecutor(FETCH_THREADS) as pool:
        return list(pool.map(fetch, rows))


def _source_progress(source: LogSource, *, key: str, result: ObjectResult, objects: int = 1) -> None:
    """Counters and the newest key processed, in one UPDATE (the key only moves forward)."""
    newer = Q(last_object_key__lte=key)
    updates: dict[str, Any] = {
        "objects_processed": F("objects_processed") + objects,
        "records_processed": F("records_processed") + result.stats.records,
        "malformed_records": F("malformed_records") + result.stats.malformed,
        "last_object_key": Case(When(newer, then=Value(key)), default=F("last_object_key")),
        "last_object_modified": Case(When(newer, then=Value(timezone.now())), default=F("last_object_modified")),
    }
    if result.stats.malformed_samples:  # rare: the newest ten, read and written back
        fresh = LogSource.objects.filter(pk=source.pk).values_list("malformed_samples", flat=True).get()
        samples = (result.stats.malformed_samples + list(fresh or []))[:10]
        updates["malformed_samples"] = [{"key": key, "sample": s} if isinstance(s, str) else s for s in samples]
    LogSource.objects.filter(pk=source.pk).update(**updates)


def _object_attempt_failed(ledger: ProcessedObject, source: LogSource, reason: str) -> str:
    with transaction.atomic():
        locked = ProcessedObject.objects.select_for_update().get(pk=ledger.pk)
        locked.attempts += 1
        locked.error = reason[:2000]
        final = locked.attempts >= MAX_ATTEMPTS
        if final:
            locked.status = ProcessedObject.Status.FAILED
        locked.save()
        _source_error(source, reason)
        if final:
            LogSource.objects.filter(pk=source.pk).update(objects_failed=F("objects_failed") + 1)
    if not final:
        raise RetryableObjectError(reason)
    logger.warning("object failed for good after %s attempts: %s", MAX_ATTEMPTS, reason)
    return "failed"


# --- inventory from the EC2 API (live mode) ---------------------------------------------------------


def _instance_details(item: dict[str, Any]) -> dict[str, Any]:
    """DescribeInstances' Instance as GuardDuty's instanceDetails."""
    nics = [{k: v for k, v in {
        "networkInterfaceId": nic.get("NetworkInterfaceId"), "privateIpAddress": nic.get("PrivateIpAddress"),
        "publicIp": (nic.get("Association") or {}).get("PublicIp"), "subnetId": nic.get("SubnetId"),
        "vpcId": nic.get("VpcId"),
        "securityGroups": [{"groupId": g.get("GroupId"), "groupName": g.get("GroupName")} for g in nic.get("Groups", [])],
    }.items() if v} for nic in item.get("NetworkInterfaces", [])]
    launch = item.get("LaunchTime")
    return {k: v for k, v in {
        "instanceType": item.get("InstanceType"), "imageId": item.get("ImageId"),
        "instanceState": (item.get("State") or {}).get("Name"),
        "availabilityZone": (item.get("Placement") or {}).get("AvailabilityZone"),
        "launchTime": launch.isoformat() if hasattr(launch, "isoformat") else launch,
        "platform": item.get("Platform"),
        "iamInstanceProfile": {"arn": item["IamInstanceProfile"].get("Arn"), "id": item["IamInstanceProfile"].get("Id")}
        if item.get("IamInstanceProfile") else None,
        "tags": [{"key": t["Key"], "value": t["Value"]} for t in item.get("Tags", [])] or None,
        "networkInterfaces": nics or None,
    }.items() if v}


def inventory_refresh(*, detector: Detector, ec2: Any = None) -> int:
    """Refresh a detector's instances, ENIs and addresses from DescribeInstances. Returns the count."""
    from ingest.aws import client_for

    ec2 = ec2 or client_for(detector.account, "ec2", detector.region)
    inventory = Inventory()
    count = 0
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page.get("Reservations", []):
            for item in reservation.get("Instances", []):
                instance_id = item["InstanceId"]
                inventory.add_instance(instance_id, _instance_details(item))
                for nic in item.get("NetworkInterfaces", []):
                    inventory.link(nic.get("NetworkInterfaceId"), instance_id)
                    for address in nic.get("PrivateIpAddresses", []):
                        inventory.link(address.get("PrivateIpAddress"), instance_id)
                        inventory.link((address.get("Association") or {}).get("PublicIp"), instance_id)
                inventory.link(item.get("PrivateIpAddress"), instance_id)
                inventory.link(item.get("PublicIpAddress"), instance_id)
                count += 1
    with transaction.atomic():
        inventory_save(inventory=inventory, account_id=detector.account_id, region=detector.region, learned_from="api")
    return count


# --- IAM principals and S3 buckets from the API (live mode) -------------------------------------------
# IAM and the bucket list are global to an account, so they are refreshed once per account (not per
# detector Region). The API is the truth for what it lists: rows learned from it that it no longer
# lists (a deleted user, role or bucket) are removed; rows learned otherwise stay.


def _principal_row(account: Account, kind: str, item: dict[str, Any]) -> InventoryPrincipal:
    # ListUsers/ListRoles leave tags out (one ListUserTags call per principal would be needed).
    details: dict[str, Any] = {}
    if kind == InventoryPrincipal.Kind.ROLE:
        trust = item.get("AssumeRolePolicyDocument")
        statements = (trust or {}).get("Statement", []) if isinstance(trust, dict) else []
        if isinstance(statements, dict):
            statements = [statements]
        # Who may assume the role (services such as ec2.amazonaws.com make it an instance role).
        details["trustedPrincipals"] = sorted({
            str(v) for st in statements if isinstance(st, dict) for values in (st.get("Principal") or {}).values()
            for v in (values if isinstance(values, list) else [values])
        }) if statements else []
        last_used = (item.get("RoleLastUsed") or {}).get("LastUsedDate")
        if last_used:
            details["lastUsed"] = last_used.isoformat()
    elif item.get("PasswordLastUsed"):
        details["passwordLastUsed"] = item["PasswordLastUsed"].isoformat()
    name_key = "UserName" if kind == InventoryPrincipal.Kind.USER else "RoleName"
    id_key = "UserId" if kind == InventoryPrincipal.Kind.USER else "RoleId"
    return InventoryPrincipal(account=account, arn=item["Arn"], kind=kind, name=item[name_key],
                              principal_id=item.get(id_key, ""), path=item.get("Path", "/"),
                              created=item.get("CreateDate"), details=details, learned_from="api")


def _replace_api_rows(model: Any, account: Account, rows: list, unique: list[str], update: list[str]) -> None:
    key = unique[-1]
    with transaction.atomic():
        if rows:
            model.objects.bulk_create(rows, update_conflicts=True, unique_fields=unique,
                                      update_fields=[*update, "learned_from", "updated_at"])
        model.objects.filter(account=account, learned_from="api").exclude(
            **{f"{key}__in": [getattr(r, key) for r in rows]}).delete()


def principals_refresh(*, account: Account, iam: Any = None) -> int:
    """IAM users and roles of a member account (ListUsers, ListRoles). Returns how many are known."""
    from ingest.aws import client_for

    iam = iam or client_for(account, "iam")
    rows: list[InventoryPrincipal] = []
    for operation, result_key, kind in (("list_users", "Users", InventoryPrincipal.Kind.USER),
                                        ("list_roles", "Roles", InventoryPrincipal.Kind.ROLE)):
        for page in iam.get_paginator(operation).paginate():
            rows += [_principal_row(account, kind, item) for item in page.get(result_key, [])]
    _replace_api_rows(InventoryPrincipal, account, rows, ["account", "arn"],
                      ["kind", "name", "principal_id", "path", "created", "details"])
    return len(rows)


def buckets_refresh(*, account: Account, s3: Any = None) -> int:
    """S3 buckets of a member account (ListBuckets). Returns how many are known."""
    from ingest.aws import client_for

    s3 = s3 or client_for(account, "s3")
    rows = [InventoryBucket(account=account, name=b["Name"], region=b.get("BucketRegion") or "",
                            created=b.get("CreationDate"), learned_from="api")
            for page in s3.get_paginator("list_buckets").paginate() for b in page.get("Buckets", [])]
    _replace_api_rows(InventoryBucket, account, rows, ["account", "name"], ["region", "created"])
    return len(rows)
