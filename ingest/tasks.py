"""Thin Celery adapters for ingestion: ids and S3 keys in, services do the work."""

from __future__ import annotations

import logging

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task
from django.db import InterfaceError, OperationalError

from ingest.services import MAX_ATTEMPTS, RetryableObjectError, refs_batched

logger = logging.getLogger(__name__)

# S3 unavailable or throttling, a dropped read, and a database connection lost mid-transaction
# (restart, failover, terminated backend): the transaction rolled back, so a later attempt is safe.
TRANSIENT = (BotoCoreError, ClientError, ConnectionError, OperationalError, InterfaceError)


def _same_queue(task) -> dict:
    """Fan-out stays on the queue its parent came from (a dedicated ingest queue, or a test's own)."""
    info = task.request.delivery_info or {}
    queue = info.get("routing_key")
    return {"queue": queue} if queue and not task.request.is_eager else {}


def _discover(task, sources) -> int:
    ids = list(sources.filter(detector__status="ENABLED").values_list("id", flat=True))
    for source_id in ids:
        discover_source_task.apply_async(args=[source_id], **_same_queue(task))
    return len(ids)


@shared_task(name="ingest.discover_all", bind=True, ignore_result=True, expires=240)
def discover_all_task(self) -> int:
    """Beat: one discovery task per log source of every enabled detector."""
    from ingest.models import LogSource

    return _discover(self, LogSource.objects.all())


@shared_task(name="ingest.discover_notified", bind=True, ignore_result=True, expires=30)
def discover_notified_task(self) -> int:
    """Beat, every few seconds: the sources fed by S3 event notifications (an SQS queue). Receiving
    from an empty queue is one cheap request, so these sources see a new object within seconds
    instead of waiting for the listing interval."""
    from ingest.models import LogSource

    return _discover(self, LogSource.objects.exclude(sqs_queue_url=""))


@shared_task(name="ingest.discover_source", bind=True, ignore_result=True, acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, retry_jitter=True, max_retries=5)
def discover_source_task(self, source_id: int) -> int:
    from ingest.models import LogSource
    from ingest.services import source_discover

    source = LogSource.objects.filter(pk=source_id).first()
    if source is None:
        return 0

    def dispatch(refs: list) -> None:  # each listed page at once: its objects go while listing goes on
        for batch in refs_batched(refs, source.kind):
            if len(batch) == 1:
                ref = batch[0]
                process_object_task.apply_async(args=[source_id, ref.bucket, ref.key, ref.etag], **_same_queue(self))
            else:
                process_objects_task.apply_async(args=[source_id, [[r.bucket, r.key, r.etag] for r in batch]],
                                                 **_same_queue(self))

    return len(source_discover(source=source, on_listed=dispatch))


@shared_task(name="ingest.process_objects", bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def process_objects_task(self, source_id: int, refs: list[list[str]]) -> int:
    """A batch of small objects of one source (ingest.services.refs_batched), analysed together."""
    from ingest.models import LogSource
    from ingest.services import ObjectRef, objects_process_batch

    try:  # objects_process_batch reads the source (and its detector's status) itself
        return objects_process_batch(source=LogSource(pk=source_id), refs=[ObjectRef(*ref) for ref in refs])
    except LogSource.DoesNotExist:
        return 0
    except Exception:
        # Nothing of the batch was written. Each object goes its own way, with the single-object
        # task's retries and ledger attempts (an unreadable object fails alone, not its neighbours).
        logger.warning("batch of %s objects of source %s failed; processing them one by one", len(refs), source_id,
                       exc_info=True)
        for bucket, key, etag in refs:
            process_object_task.apply_async(args=[source_id, bucket, key, etag], **_same_queue(self))
        return 0


@shared_task(name="ingest.process_object", bind=True, ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_jitter=True,
             max_retries=MAX_ATTEMPTS + 2)
def process_object_task(self, source_id: int, bucket: str, key: str, etag: str) -> str:
    from ingest.models import LogSource
    from ingest.services import object_process

    source = LogSource(pk=source_id)  # object_process reads it (and its detector's status) itself
    while True:
        try:
            return object_process(source=source, bucket=bucket, key=key, etag=etag)
        except LogSource.DoesNotExist:
            return "gone"
        except RetryableObjectError as exc:
            # Bounded: the ledger counts attempts and marks the object failed after MAX_ATTEMPTS.
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=30) from exc


@shared_task(name="ingest.sweep_stale", bind=True, ignore_result=True, expires=600)
def sweep_stale_task(self) -> int:
    """Beat: queue again the pending objects whose task was lost with a killed worker or a restarted
    broker (see ledger_stale_dispatch)."""
    from ingest.services import ledger_stale_dispatch

    stale = ledger_stale_dispatch()
    for source_id, ref in stale:
        process_object_task.apply_async(args=[source_id, ref.bucket, ref.key, ref.etag], **_same_queue(self))
    return len(stale)


@shared_task(name="ingest.inventory_refresh_all", ignore_result=True, expires=600)
def inventory_refresh_all_task() -> int:
    """Beat: refresh every enabled detector's EC2 inventory (instances, ENIs, addresses), and once per
    account with an enabled detector its IAM users and roles and its S3 buckets (global services)."""
    from accounts.models import Detector

    detectors = Detector.objects.filter(status="ENABLED").exclude(account__role_arn="")
    ids = list(detectors.values_list("id", flat=True))
    for detector_id in ids:
        inventory_refresh_task.delay(detector_id)
    for account_id in sorted(set(detectors.values_list("account_id", flat=True))):
        inventory_refresh_global_task.delay(account_id)
    return len(ids)


@shared_task(name="ingest.inventory_refresh_global", ignore_result=True, acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, retry_jitter=True, max_retries=3)
def inventory_refresh_global_task(account_id: int) -> int:
    from accounts.models import Account
    from ingest.services import buckets_refresh, principals_refresh

    account = Account.objects.filter(pk=account_id).first()
    if account is None:
        return 0
    return principals_refresh(account=account) + buckets_refresh(account=account)


@shared_task(name="ingest.inventory_refresh", ignore_result=True, acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, retry_jitter=True, max_retries=3)
def inventory_refresh_task(detector_id: int) -> int:
    from accounts.models import Detector
    from ingest.services import inventory_refresh

    detector = Detector.objects.select_related("account").filter(pk=detector_id).first()
    return inventory_refresh(detector=detector) if detector else 0


@shared_task(name="ingest.rule_state_expire", ignore_result=True, expires=1800)
def rule_state_expire_task() -> int:
    """Beat: delete rule state rows older than each rule's window (or history period)."""
    from ingest.state import rule_state_expire

    return sum(rule_state_expire().values())
