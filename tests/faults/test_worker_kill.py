"""SIGKILL real Celery workers in the middle of processing objects; every object still counts exactly
once: the same findings, counts, usage and ledger as an undisturbed run.

- A pool process killed: its parent sees the worker lost and the task is re-delivered
  (acks_late + reject_on_worker_lost); the replacement process finishes it.
- The whole worker killed (parent and pool): nobody rejects the message. Redis holds it unacked
  until its visibility timeout (an hour), the filesystem broker has already dropped it; the
  object's ledger row stays pending and the sweeper (a beat task) queues it again.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from findings.models import Finding
from tests.faults.trail import Trail, assert_exactly_once, done, in_progress, ledger, trail_source
from tests.faults.workers import Worker, routed_to, wait_for, worker_env

pytestmark = pytest.mark.slow


def test_sigkill_pool_process_mid_object_then_everything_exactly_once(transactional_db, member_factory, aws):
    from ingest.tasks import discover_source_task, process_object_task

    trail = Trail("666666666666", "kill-trail")
    source = trail_source(member_factory, trail)
    queue = f"vigil-kill-{uuid.uuid4().hex[:8]}"
    worker = Worker(queue, worker_env(AWS_ENDPOINT_URL=aws)).start()
    killed: list[int] = []
    try:
        with routed_to(queue):
            discover_source_task.apply(args=[source.pk])  # here; its process tasks go to the worker
            wait_for(lambda: done(source) >= 2 and in_progress(source, within=0.5) is not None, timeout=90,
                     what="an object in progress")
            killed.append(worker.kill_child())
            wait_for(lambda: done(source) == trail.objects, timeout=90, what="all objects done")
            assert_exactly_once(source, trail)

            # Every task delivered again (as a broker might after a restart): nothing changes.
            before = list(Finding.objects.values_list("id", "count", "updated_at"))
            for obj in ledger(source):
                process_object_task.delay(source.pk, obj.bucket, obj.key, obj.etag)
            wait_for(lambda: worker.log.read_text(errors="replace").count("'skipped'") >= trail.objects,
                     timeout=60, what="re-deliveries skipped")
            assert list(Finding.objects.values_list("id", "count", "updated_at")) == before
            assert_exactly_once(source, trail)
    finally:
        log = worker.stop()
    assert len(killed) == 1
    assert "WorkerLostError" in log, log  # the kill did hit a running task


def test_sigkill_whole_worker_then_sweeper_requeues_its_object_exactly_once(transactional_db, member_factory, aws):
    from ingest.tasks import discover_source_task, sweep_stale_task

    trail = Trail("666666666667", "kill-whole-trail", objects=4)
    source = trail_source(member_factory, trail)
    queue = f"vigil-killall-{uuid.uuid4().hex[:8]}"
    # A short stale age, so the sweeper acts within the test (deployed: VIGIL_INGEST_STALE_SECONDS).
    env = worker_env(AWS_ENDPOINT_URL=aws, VIGIL_INGEST_STALE_SECONDS="2")
    first, second = Worker(queue, env), Worker(queue, env)
    try:
        with routed_to(queue):
            first.start()
            discover_source_task.apply(args=[source.pk])
            wait_for(lambda: in_progress(source, within=0.5) is not None, timeout=90, what="an object in progress")
            victim = in_progress(source)
            first.kill()

            second.start()
            # Everything but the victim: its task died with the worker and is not delivered again.
            wait_for(lambda: done(source) == trail.objects - 1, timeout=90, what="the other objects done")
            time.sleep(3)  # the victim is past the stale age, and nothing else picks it up meanwhile
            victim.refresh_from_db()
            assert victim.status == "pending" and done(source) == trail.objects - 1

            sweep_stale_task.delay()  # as beat sends it; the worker runs it and queues the victim
            wait_for(lambda: done(source) == trail.objects, timeout=60, what="the swept object done")
            assert_exactly_once(source, trail)
            source.refresh_from_db()
            assert "1 object(s) whose task was lost" in source.last_error  # on the source's status page
    finally:
        first.stop()
        log = second.stop()
    assert re.search(r"Task ingest\.sweep_stale\[[^]]+\] succeeded in [0-9.]+s: 1\b", log), log  # the victim only
