"""Thin Celery adapters for ingestion: ids and S3 keys in, services do the work."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from celery import shared_task

from ingest.services import MAX_ATTEMPTS, RetryableObjectError

TRANSIENT = (BotoCoreError, ClientError, ConnectionError)


@shared_task(name="ingest.discover_all", ignore_result=True, expires=240)
def discover_all_task() -> int:
    """Beat: one discovery task per log source of every enabled detector."""
    from ingest.models import LogSource

    ids = list(LogSource.objects.filter(detector__status="ENABLED").values_list("id", flat=True))
    for source_id in ids:
        discover_source_task.delay(source_id)
    return len(ids)


@shared_task(name="ingest.discover_source", ignore_result=True, acks_late=True, autoretry_for=TRANSIENT,
             retry_backoff=True, retry_jitter=True, max_retries=5)
def discover_source_task(source_id: int) -> int:
    from ingest.models import LogSource
    from ingest.services import source_discover

    source = LogSource.objects.filter(pk=source_id).first()
    if source is None:
        return 0
    refs = source_discover(source=source)
    for ref in refs:
        process_object_task.delay(source_id, ref.bucket, ref.key, ref.etag)
    return len(refs)


@shared_task(name="ingest.process_object", bind=True, ignore_result=True, acks_late=True,
             reject_on_worker_lost=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_jitter=True,
             max_retries=MAX_ATTEMPTS + 2)
def process_object_task(self, source_id: int, bucket: str, key: str, etag: str) -> str:
    from ingest.models import LogSource
    from ingest.services import object_process

    source = LogSource.objects.filter(pk=source_id).first()
    if source is None:
        return "gone"
    while True:
        try:
            return object_process(source=source, bucket=bucket, key=key, etag=etag)
        except RetryableObjectError as exc:
            # Bounded: the ledger counts attempts and marks the object failed after MAX_ATTEMPTS.
            if not self.request.is_eager:
                raise self.retry(exc=exc, countdown=30) from exc
