"""Real Celery worker processes for fault tests: started on a queue of the test's own, against the
test database and broker (Redis when CELERY_BROKER_URL names it, else the filesystem broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def uses_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis")


class Worker:
    def __init__(self, queue: str, env: dict[str, str], *, pool: str = "prefork") -> None:
        self.queue, self.env, self.pool = queue, env, pool
        self.proc: subprocess.Popen | None = None
        self.log = Path(f"/tmp/{queue}-{uuid.uuid4().hex[:6]}.log")

    def start(self) -> Worker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "console", "worker", f"--pool={self.pool}", "--concurrency=1",
             "-Q", self.queue, "-n", f"{self.queue}-{uuid.uuid4().hex[:4]}@%h", "--loglevel=INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def children(self) -> list[int]:
        assert self.proc is not None
        pids: list[int] = []
        # A replacement pool process is forked by the pool's supervisor thread: read every thread's.
        for children in Path(f"/proc/{self.proc.pid}/task").glob("*/children"):
            try:
                pids += [int(p) for p in children.read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
        return pids

    def kill_child(self) -> int:
        """SIGKILL the pool process running the task (prefork): the parent sees the worker lost."""
        deadline = time.monotonic() + 30
        while not self.children():
            assert time.monotonic() < deadline, "no pool process"
            time.sleep(0.05)
        pid = self.children()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill(self) -> None:
        """SIGKILL the whole worker (its process group: parent and pool)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> str:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.log.read_text(errors="replace")[-6000:] if self.log.exists() else ""


def worker_env(**extra: str) -> dict[str, str]:
    broker = settings.CELERY_BROKER_URL
    return {**os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": "" if broker == "filesystem://" else broker,
            "CELERY_TASK_ALWAYS_EAGER": "0", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "POLARS_MAX_THREADS": "1",
            "DB_CONN_MAX_AGE": "0", **extra}


@contextmanager
def routed_to(queue: str):
    """Send ingestion tasks through the broker to `queue` (not run eagerly in this process)."""
    from console.celery import app

    def reroute(routes: dict | None) -> None:
        # Celery builds its router once (app.amqp.router is cached on the first send through a
        # broker, e.g. by an earlier test): rebuild it, or the tasks go to the queue of that time.
        app.conf.task_routes = routes
        app.amqp.flush_routes()
        app.amqp.__dict__.pop("router", None)

    app.conf.task_always_eager = False
    reroute({"ingest.*": {"queue": queue}})
    try:
        yield
    finally:
        app.conf.task_always_eager = True
        reroute(None)


def wait_for(predicate: Callable[[], bool], *, timeout: float = 120, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")
