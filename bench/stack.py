"""Real parts for the end-to-end benchmarks: a PostgreSQL database of their own, a moto S3/STS/SQS
server over HTTP on loopback (a process of its own, as AWS is not in ours), and Celery worker and
beat processes started from the product's own Celery app, on a queue of the run's own.

Nothing here is mocked: objects are PUT into and read back from the moto server over HTTP, member
accounts are reached by STS AssumeRole, tasks go through the configured broker (Redis when
CELERY_BROKER_URL names it) to real prefork workers that write to PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": "us-east-1"}


class Skip(Exception):
    """The benchmark cannot run here (printed as a `skipped` comment, not a bench line)."""


def use_database(suffix: str) -> str:
    """Point this process (and the workers it starts) at `<DATABASE_URL's database>_<suffix>` on the
    same PostgreSQL server, created and migrated if missing, so that a benchmark never writes to the
    console's own database. Workers in several processes need PostgreSQL (SQLite serialises them)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise Skip("set DATABASE_URL to a PostgreSQL server (the workers write concurrently)")
    import psycopg

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'vigil'}_{suffix}"
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    # The benchmark's broker folders, secret key and beat schedule: never the console's var/.
    os.environ.setdefault("VIGIL_VAR_DIR", str(ROOT / "var" / "bench" / "var"))
    os.environ.update(AWS_ENV)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return os.environ["DATABASE_URL"]


def reset_ingest_state() -> None:
    """Empty what ingestion writes, and the accounts, so each run starts from the same state."""
    from accounts.models import Account
    from findings.models import Finding
    from ingest.models import InventoryInstance, InventoryLink, ProcessedObject, RuleState, UsageRecord

    for model in (Finding, ProcessedObject, UsageRecord, InventoryInstance, InventoryLink, RuleState, Account):
        model.objects.all().delete()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (S3, STS, SQS …) in a process of its own on loopback; yields its endpoint."""
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="vigil-bench-moto-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **AWS_ENV}, cwd=ROOT,
                            start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"moto server did not start (log: {log.name})") from None
                time.sleep(0.1)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        yield endpoint
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Member:
    """A member account in moto: its role (reached by AssumeRole, as Vigil does) and a bucket."""

    aws_account_id: str
    endpoint: str
    role_arn: str = ""
    external_id: str = "vigil-bench"

    def __post_init__(self) -> None:
        self.role_arn = f"arn:aws:iam::{self.aws_account_id}:role/VigilReader"
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            sts = boto3.client("sts", endpoint_url=self.endpoint, region_name="us-east-1")
            creds = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="bench-setup",
                                    ExternalId=self.external_id)["Credentials"]
            self._clients[service] = boto3.client(
                service, endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
        return self._clients[service]

    def bucket(self, name: str) -> str:
        self.client("s3").create_bucket(Bucket=name)
        return name

    def put_many(self, bucket: str, objects: list[tuple[str, bytes]], threads: int = 8) -> None:
        """PUT objects (already gzip'd) concurrently: setting up is not what is measured."""
        s3 = self.client("s3")
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects))

    def account(self, name: str) -> Any:
        """The Vigil account for this member (its role and external id), with a us-east-1 detector."""
        from accounts.models import Account, Detector

        account = Account.objects.create(aws_account_id=self.aws_account_id, name=name, role_arn=self.role_arn,
                                         external_id=self.external_id)
        Detector.objects.get_or_create(account=account, region="us-east-1")
        return account


class Celery:
    """A product Celery process (`worker` or `beat`) on the run's queue, via bench.celery_app."""

    def __init__(self, queue: str, *, extra_env: dict[str, str] | None = None) -> None:
        self.queue = queue
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.env = {**os.environ, **AWS_ENV, "CELERY_TASK_ALWAYS_EAGER": "0", "VIGIL_BENCH_QUEUE": queue,
                    "POLARS_MAX_THREADS": "1", "LOG_LEVEL": "WARNING", **(extra_env or {})}

    def _start(self, args: list[str]) -> subprocess.Popen:
        log = Path(tempfile.gettempdir()) / f"vigil-bench-{self.queue}-{len(self.procs)}.log"
        proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench.celery_app", *args],
                                cwd=ROOT, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def worker(self, concurrency: int) -> subprocess.Popen:
        """The deployment's worker shape (docker-compose: prefork, --concurrency=2), one queue."""
        proc = self._start(["worker", "--pool=prefork", f"--concurrency={concurrency}", "-Q", self.queue,
                            "-n", f"{self.queue}-{len(self.procs)}@%h", "--loglevel=WARNING", "--without-gossip",
                            "--without-mingle", "--without-heartbeat"])
        from console.celery import app

        name = f"{self.queue}-{len(self.procs) - 1}@{socket.gethostname()}"
        deadline = time.monotonic() + 90
        # Ready when every pool process exists and the consumer answers (start-up is not measured).
        while len(pool_children(proc.pid)) < concurrency or not app.control.ping(destination=[name], timeout=0.5):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {_tail(self.logs[-1])}")
            time.sleep(0.2)
        return proc

    def beat(self) -> subprocess.Popen:
        schedule = Path(tempfile.mkdtemp(prefix="vigil-bench-beat-")) / "schedule"
        return self._start(["beat", "--loglevel=INFO", "--schedule", str(schedule)])

    def stop(self) -> None:
        for proc in self.procs:
            _stop(proc)
        self.procs.clear()

    def __enter__(self) -> Celery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        purge(self.queue)


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-3000:]
    except FileNotFoundError:
        return ""


# Who used the machine's cores during a run: each role's processes, by command line.
ROLES: dict[str, Callable[[str], bool]] = {
    "workers": lambda cmd: "celery" in cmd and "bench.celery_app" in cmd,
    "PostgreSQL": lambda cmd: cmd.startswith("postgres"),
    "Redis": lambda cmd: cmd.startswith("redis-server"),
    "moto": lambda cmd: "bench.moto_server" in cmd,
}


def cpu_by_role() -> dict[str, float]:
    """CPU seconds (user + system) used so far by the live processes of each role in ROLES."""
    out = dict.fromkeys(ROLES, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        for role, matches in ROLES.items():
            if matches(cmd):
                out[role] += (int(fields[11]) + int(fields[12])) / tick
                break
    return out


def pool_children(pid: int) -> list[int]:
    """A prefork worker's pool processes (forked by several of the parent's threads: read each)."""
    pids: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += [int(p) for p in children.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def new_queue(prefix: str) -> str:
    return f"vigil-bench-{prefix}-{uuid.uuid4().hex[:6]}"


def purge(queue: str) -> None:
    """Leave nothing of the run's queue in the broker."""
    from console.celery import app

    with app.connection_for_write() as conn:
        try:
            conn.default_channel.queue_purge(queue)
        except conn.channel_errors:  # never declared: nothing to purge
            return


def wait_until(predicate: Callable[[], bool], *, timeout: float, poll: float = 0.05, what: str = "") -> float:
    """Seconds until `predicate()` held; raises after `timeout`."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(poll)
    return time.monotonic() - start


def routed(queue: str) -> None:
    """Send ingest tasks from this process to the run's queue, through the broker."""
    from console.celery import app

    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue
    app.conf.task_routes = {"ingest.*": {"queue": queue}}
