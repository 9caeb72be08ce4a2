"""Redis restarted during ingestion: a real Celery worker on a Redis of the test's own (started here
on a free port, no persistence, as CI's and a default container's), killed mid-ingestion and
started again. Every queued task is gone with it; the objects' pending ledger rows are not, and the
sweeper queues them again once the broker is back: nothing lost, nothing counted twice."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.faults.trail import Trail, assert_exactly_once, done, in_progress, ledger, trail_source
from tests.faults.workers import Worker, routed_to, wait_for, worker_env

pytestmark = pytest.mark.slow


class RedisServer:
    """A redis-server process of this test's (never the shared one): kill -9 and start again."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.log = Path(f"/tmp/vigil-faults-redis-{self.port}.log")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", "/tmp", "--dbfilename", f"vigil-faults-{self.port}.rdb"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        wait_for(lambda: self._ping(client), timeout=20, what="redis-server up")

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def crash(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server")
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def send(url: str, task, args: list) -> None:
    """Publish `task` to the private broker (this process's Celery app points at another)."""
    from kombu import Connection

    with Connection(url) as conn, conn.Producer() as producer:
        task.apply_async(args=args, producer=producer)


def test_redis_restarted_mid_ingestion_then_caught_up_exactly_once(transactional_db, member_factory, aws,
                                                                     private_redis):
    from ingest.tasks import discover_source_task, sweep_stale_task

    trail = Trail("565656565656", "restart-trail", objects=8)
    source = trail_source(member_factory, trail)
    queue = f"vigil-restart-{uuid.uuid4().hex[:8]}"
    worker = Worker(queue, worker_env(AWS_ENDPOINT_URL=aws, CELERY_BROKER_URL=private_redis.url,
                                      VIGIL_INGEST_STALE_SECONDS="2"))
    try:
        with routed_to(queue):
            worker.start()
            send(private_redis.url, discover_source_task, [source.pk])  # the worker discovers and fans out
            wait_for(lambda: done(source) >= 2 and in_progress(source) is not None, timeout=90,
                     what="ingestion under way")
            private_redis.crash()  # the queued tasks of the remaining objects die with it
            time.sleep(1)
            private_redis.start()

            # The object in progress finishes (its work is in PostgreSQL); the rest wait in the ledger.
            wait_for(lambda: in_progress(source) is None, timeout=60, what="the running object finished")
            time.sleep(3)  # nothing else arrives: the queue was lost
            lost = ledger(source).filter(status="pending").count()
            assert lost > 0 and done(source) + lost == trail.objects

            send(private_redis.url, sweep_stale_task, [])  # as beat sends it
            wait_for(lambda: done(source) == trail.objects, timeout=90, what="caught up")
            assert_exactly_once(source, trail)
            source.refresh_from_db()
            assert f"{lost} object(s) whose task was lost" in source.last_error
    finally:
        log = worker.stop()
    assert "Connection to broker lost" in log, log
