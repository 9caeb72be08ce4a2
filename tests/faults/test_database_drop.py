"""PostgreSQL connection dropped mid-transaction: while a real Celery worker processes an object, its
backend is terminated (pg_terminate_backend, as a failover or a restart would). The transaction
rolls back, the task is retried with backoff on a new connection, and the object counts exactly
once: nothing half-written, nothing lost, nothing counted twice."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection

from tests.faults.trail import Trail, assert_exactly_once, done, in_progress, trail_source
from tests.faults.workers import Worker, routed_to, wait_for, worker_env

pytestmark = pytest.mark.slow


def worker_backend_in_transaction() -> int | None:
    """The backend of a worker's connection inside a transaction (this test's own excluded)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend' AND xact_start IS NOT NULL ORDER BY xact_start LIMIT 1"
        )
        row = cursor.fetchone()
    return row[0] if row else None


def terminate(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        return bool(cursor.fetchone()[0])


def test_connection_dropped_mid_transaction_is_retried_exactly_once(transactional_db, member_factory, aws):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: terminates the worker's backend")
    from ingest.tasks import discover_source_task

    trail = Trail("343434343434", "dropped-trail", objects=4)
    source = trail_source(member_factory, trail)
    queue = f"vigil-dbdrop-{uuid.uuid4().hex[:8]}"
    worker = Worker(queue, worker_env(AWS_ENDPOINT_URL=aws))
    terminated: list[int] = []

    def drop_mid_object() -> bool:
        # An object taken up and a worker's transaction open: that is the object's transaction.
        if in_progress(source) is None:
            return False
        pid = worker_backend_in_transaction()
        if pid is not None and terminate(pid):
            terminated.append(pid)
            return True
        return False

    try:
        with routed_to(queue):
            worker.start()
            discover_source_task.apply(args=[source.pk])
            wait_for(lambda: done(source) >= 1, timeout=90, what="a first object done")
            wait_for(drop_mid_object, timeout=60, what="a worker's transaction to terminate")
            wait_for(lambda: done(source) == trail.objects, timeout=90, what="all objects done")
            assert_exactly_once(source, trail)
    finally:
        log = worker.stop()
    assert len(terminated) == 1
    # Retried with backoff, not given up. PostgreSQL words the loss by timing: "terminating connection
    # due to administrator command" mid-statement, "server closed the connection" between statements.
    assert re.search(r"ingest\.process_object\[[^]]+\] retry: Retry in \d+s: OperationalError", log), log
