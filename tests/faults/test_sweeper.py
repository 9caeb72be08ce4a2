"""The sweeper's choice: which pending ledger rows lost their task. Fast; the end-to-end proofs
with killed workers and a restarted broker are in test_worker_kill.py and test_broker_restart.py."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone

from accounts.models import Detector
from ingest.models import LogSource, ProcessedObject
from ingest.services import ObjectRef, ledger_pending_add, ledger_stale_dispatch
from ingest.tasks import sweep_stale_task


def make_source(factory, bucket: str = "sweep-trail") -> LogSource:
    account = factory.account()
    return LogSource.objects.create(detector=account.detectors.get(), kind="cloudtrail", bucket=bucket)


def age(keys: list[str], seconds: int, **fields) -> None:
    """Make rows look `seconds` old (created, dispatched, and any other timestamp given)."""
    then = timezone.now() - timedelta(seconds=seconds)
    ProcessedObject.objects.filter(key__in=keys).update(created_at=then, dispatched_at=then,
                                                        **{f: then for f in fields})


def test_discovered_rows_are_pending_and_only_stale_ones_are_swept(factory):
    source = make_source(factory)
    ledger_pending_add(source=source, refs=[ObjectRef("sweep-trail", k, "e") for k in ("lost", "queued", "done",
                                                                                        "started", "again")])
    ledger_pending_add(source=source, refs=[ObjectRef("sweep-trail", "again", "e")])  # listed twice: one row
    assert ProcessedObject.objects.filter(source=source, status="pending").count() == 5
    age(["lost", "done", "again"], 120)
    age(["started"], 120)
    ProcessedObject.objects.filter(key="started").update(started_at=timezone.now())  # a worker is on it
    ProcessedObject.objects.filter(key="done").update(status="done")

    swept = ledger_stale_dispatch(stale_seconds=60)
    assert sorted(ref.key for _, ref in swept) == ["again", "lost"]
    assert {source_id for source_id, _ in swept} == {source.pk}
    # Dispatched just now: the next sweep leaves them alone until they are stale again.
    assert ledger_stale_dispatch(stale_seconds=60) == []
    source.refresh_from_db()
    assert source.last_error.startswith("2 object(s) whose task was lost")


def test_suspended_detector_is_not_swept(factory):
    source = make_source(factory)
    ledger_pending_add(source=source, refs=[ObjectRef("sweep-trail", "k", "e")])
    age(["k"], 120)
    Detector.objects.filter(pk=source.detector_id).update(status=Detector.Status.SUSPENDED)
    assert ledger_stale_dispatch(stale_seconds=60) == []


def test_beat_schedules_the_sweeper():
    # The task itself runs on real workers in test_worker_kill.py and test_broker_restart.py.
    entry = settings.CELERY_BEAT_SCHEDULE["ingest-sweep-stale"]
    assert entry["task"] == sweep_stale_task.name and 0 < entry["schedule"] < settings.VIGIL_INGEST_STALE_SECONDS


@pytest.mark.django_db(transaction=True)
def test_object_being_processed_is_not_swept(factory):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    source = make_source(factory)
    ledger_pending_add(source=source, refs=[ObjectRef("sweep-trail", k, "e") for k in ("busy", "lost")])
    age(["busy", "lost"], 120)  # a long attempt: started long ago, still holding its row
    locked, release = threading.Event(), threading.Event()

    def worker() -> None:
        try:
            with transaction.atomic():
                ProcessedObject.objects.select_for_update().get(key="busy")
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(30)
        assert [ref.key for _, ref in ledger_stale_dispatch(stale_seconds=60)] == ["lost"]
    finally:
        release.set()
        thread.join()
