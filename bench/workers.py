"""End-to-end benchmarks through real Celery workers, a moto S3/STS/SQS server over HTTP and PostgreSQL
(bench.stack). Each needs DATABASE_URL on PostgreSQL; it works in `<database>_bench_workers[_<size>]`.

ingest.workers2 — the `ingest.*` objects (bench.ingest.generate: CloudTrail, flow and DNS, the same
  files), PUT into S3, discovered and processed by a prefork worker with two pool processes; events/s
  against the same run with one pool process (baseline).
objects.cloudtrail_small — many small CloudTrail objects (1-5 events each, AWS's key layout), discovered
  and processed by two pool processes; objects/s. Baseline: the same objects listed, fetched over HTTP
  and parsed (gunzip + json) by a plain boto3 loop in one process, no detection and no database.
latency.object_to_finding.{polling,sqs} — seconds from an object's PUT to its finding being in the
  database (committed with the object's ledger row), worst of several objects landing at spread-out
  moments. Polling: beat lists every source at the configured interval (VIGIL_INGEST_DISCOVER_SECONDS;
  10 s at --size small to fit CI); baseline = that interval. SQS: S3 event notifications into an SQS
  queue on the moto server, read at VIGIL_INGEST_SQS_SECONDS; baseline = that interval.
machine.floor_scaling2, machine.cpu_scaling2 — printed beside ingest.workers2: the same two-against-one
  ratio, in the same run, for the machine's floor on the same objects (gunzip + fastest parse of each,
  bench.ingest.floor_all, in one process and in two at once) and for a plain CPU-bound Python loop (no
  memory traffic). What the floor gains from a second process bounds what the pipeline can: JSON
  decoding and DuckDB share the memory system (seen: flow 1.97, CloudTrail 1.57, DNS 1.35), and on a
  VM whose two vCPUs slow each other even the loop stays below 2.
memory.worker_peak_largest_object — peak resident memory (VmHWM) of the pool process that ingests one
  large gzip'd CloudTrail object (50 MB gzip'd at full size), MB; baseline = the object's uncompressed
  size in MB (a ratio under 1 means it was streamed, not held whole).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import TARGETS, benchmark, report
from bench.stack import (
    Celery,
    Member,
    Skip,
    cpu_by_role,
    moto_server,
    new_queue,
    pool_children,
    reset_ingest_state,
    routed,
    use_database,
    wait_until,
)

REGION = "us-east-1"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
DATA = Path(os.environ.get("VIGIL_BENCH_DIR", Path(__file__).resolve().parent.parent / "var" / "bench"))
SMALL_OBJECTS = {"small": 500, "default": 10_000, "large": 30_000}
# Generated CloudTrail (~1 KB per event) gzips ~13x: 770k events ≈ 50 MB gzip'd.
LARGE_OBJECT_EVENTS = {"small": 60_000, "default": 770_000, "large": 770_000}
POLL_SECONDS_SMALL = 10


def _setup(size: str) -> bool:
    """This size's database, emptied. One run at a time: beat discovers every source in it."""
    try:
        use_database("bench_workers" if size == "default" else f"bench_workers_{size}")
    except Skip as why:
        print(f"# skipped: {why}", flush=True)
        return False
    reset_ingest_state()
    return True


def _done_count(**filters) -> int:
    from ingest.models import ProcessedObject

    return ProcessedObject.objects.filter(status="done", **filters).count()


def _tiny(kind: str, account: str, k: int) -> tuple[str, bytes]:
    """A tiny benign object of a log type, in AWS's layout."""
    from ingest import synthetic as syn

    t = T0 + timedelta(minutes=k)
    if kind == "cloudtrail":
        return _root_object(account, t, f"warm{k}", root=False)
    if kind == "flow":
        return (syn.flow_key(account, REGION, t, suffix=f"warm{k}"),
                gzip.compress(syn.flow_body(syn.benign_flow(n=50, account=account, start=t, seed=k))))
    return (syn.dns_key(account, "vpc-0a1b2c3d4e5f60718", t, suffix=f"warm{k}"),
            gzip.compress(syn.dns_body(syn.benign_dns(n=50, account=account, region=REGION, start=t, seed=k))))


def _warm(member: Member, sources: list, queue: str, concurrency: int) -> float:
    """Tiny objects of each log type, one task each, before the timed run: every pool process pays
    first-use costs on its first object of a type (the threat-intel matcher is built once per process:
    seconds), which a long-running worker has long paid. Returns the seconds that took."""
    from ingest.models import LogSource
    from ingest.tasks import process_object_task

    s3 = member.client("s3")
    if "bench-warm" not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket="bench-warm")
    keys = []
    for kind in sorted({source.kind for source in sources}):
        warm, _ = LogSource.objects.get_or_create(detector=sources[0].detector, kind=kind, bucket="bench-warm")
        for k in range(2 * concurrency):
            key, body = _tiny(kind, member.aws_account_id, 100 * concurrency + k)
            etag = s3.put_object(Bucket="bench-warm", Key=key, Body=body)["ETag"].strip('"')
            keys.append(key)
            process_object_task.apply_async(args=[warm.pk, "bench-warm", key, etag], queue=queue)
    return wait_until(lambda: _done_count(key__in=keys) == len(keys), timeout=600, poll=0.1, what="warm-up objects")


def _process(member: Member, sources: list, objects: int, concurrency: int) -> float:
    """Seconds from dispatching discovery to every object's ledger row done, with a fresh worker
    whose pool processes have each processed a first object (_warm)."""
    from ingest.tasks import discover_source_task

    queue = new_queue(f"c{concurrency}")
    with Celery(queue) as celery:
        celery.worker(concurrency)
        routed(queue)
        cold = _warm(member, sources, queue, concurrency)
        cpu_before = cpu_by_role()
        start = time.monotonic()
        for source in sources:
            discover_source_task.apply_async(args=[source.pk], queue=queue)
        waits = []

        def done() -> bool:
            waits.append(_lock_waiters())
            return _done_count(source__in=sources) >= objects

        wait_until(done, timeout=1800, poll=0.2, what=f"{objects} objects done")
        seconds = time.monotonic() - start
        used = {role: cpu - cpu_before[role] for role, cpu in cpu_by_role().items()}
    print(f"# {concurrency} pool process(es): {seconds:.1f}s (after {cold:.1f}s of warm-up); a worker waited on a lock in "
          f"{100 * sum(1 for w in waits if w) / max(len(waits), 1):.0f} % of samples; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; cores used: "
          + ", ".join(f"{role} {cpu / seconds:.2f}" for role, cpu in used.items()), flush=True)
    return seconds


def _lock_waiters() -> int:
    """Backends of this database waiting on a lock (row locks of the ledger, baselines, findings)."""
    from django.db import connection

    with connection.cursor() as db:
        db.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                   "AND wait_event_type = 'Lock'")
        return db.fetchone()[0]


# --- ingest.workers2 --------------------------------------------------------------------------------

@benchmark("ingest.workers2")
def ingest_workers2(size: str) -> None:
    from bench.ingest import ACCOUNT, generate

    if not _setup(size):
        return
    from ingest.models import LogSource, ProcessedObject

    files = generate(size, DATA / "data")
    base = DATA / "data" / size
    objects = [(str(p.relative_to(base)), p.read_bytes()) for kind in ("cloudtrail", "flow", "dns") for p in files[kind]]
    with moto_server() as endpoint:
        member = Member(ACCOUNT, endpoint)
        member.put_many(member.bucket("bench-logs"), objects)
        rates = {}
        for concurrency in (1, 2):
            reset_ingest_state()
            account = member.account("bench workers")
            detector = account.detectors.get()
            sources = [LogSource.objects.create(detector=detector, kind=kind, bucket="bench-logs")
                       for kind in ("cloudtrail", "flow", "dns")]
            seconds = _process(member, sources, len(objects), concurrency)
            events = sum(ProcessedObject.objects.filter(source__in=sources).values_list("records", flat=True))
            rates[concurrency] = events / seconds
            print(f"# {concurrency} pool process(es): {len(objects)} objects, {events:,} events in {seconds:.1f}s",
                  flush=True)
    report("ingest.workers2", rates[2], "events/s", rates[1])
    from bench.ingest import floor_all

    two, one = scaling(floor_all, size, DATA / "data")
    report("machine.floor_scaling2", two, "events/s", one)
    two, one = scaling(_spin, 20_000_000)
    report("machine.cpu_scaling2", two, "loops/s", one)


def _spin(loops: int) -> int:
    """A pure-Python loop: no allocation, no memory traffic beyond the core's own caches."""
    x = 0
    for i in range(loops):
        x += i * i
    return loops


def scaling(work: Callable[..., int], *args: Any, rounds: int = 3) -> tuple[float, float]:
    """(units per wall second of two processes doing `work(*args)` at once, of one process doing it
    alone), from the round whose ratio is the median of `rounds`: one and two alternate, so a
    slow spell of a shared machine falls on both."""
    from concurrent.futures import ProcessPoolExecutor

    def rate(pool: ProcessPoolExecutor, processes: int) -> float:
        start = time.monotonic()
        units = sum(pool.map(work, *([a] * processes for a in args)))
        return units / (time.monotonic() - start)

    with ProcessPoolExecutor(2) as pool:
        rate(pool, 2)  # warm: both processes import and touch the data before the clock
        pairs = sorted(((rate(pool, 2), rate(pool, 1)) for _ in range(rounds)), key=lambda p: p[0] / p[1])
    return pairs[len(pairs) // 2]


# --- objects.cloudtrail_small ---------------------------------------------------------------------

def small_objects(n: int, account: str) -> list[tuple[str, bytes]]:
    """n CloudTrail objects of 1-5 events in AWS's layout; every 50th has root usage (a finding)."""
    from ingest import synthetic as syn

    rng = random.Random(11)
    out = []
    for i in range(n):
        t = T0 + timedelta(seconds=30 * i)
        events = syn.benign_cloudtrail(n=rng.randint(1, 5), account=account, region=REGION, start=t, seed=i)
        if i % 50 == 0:
            events[0] = syn.cloudtrail_event(t=t, account=account, region=REGION, name="ListBuckets",
                                             source="s3.amazonaws.com", ip="198.51.100.20", root=True, rng=rng)
        out.append((syn.cloudtrail_key(account, REGION, t, f"s{i:06d}"), gzip.compress(syn.cloudtrail_body(events), 6)))
    return out


BASELINE_SAMPLE = 1_000


def boto3_loop(member: Member, bucket: str) -> tuple[int, int]:
    """The baseline: list, GET, gunzip and json-parse objects in one process, the first
    BASELINE_SAMPLE of them (a rate; all 10,000 would only add minutes). (objects, events)"""
    s3 = member.client("s3")
    objects = events = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 1000}):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            events += len(json.loads(gzip.decompress(body))["Records"])
            objects += 1
            if objects == BASELINE_SAMPLE:
                return objects, events
    return objects, events


def get_cost(member: Member, bucket: str, sample: int = 200) -> tuple[float, float]:
    """CPU milliseconds per GET of a small object: (moto server, boto3 client). What the emulator
    and the SDK cost on this machine's two cores, before any parsing or detection."""
    s3 = member.client("s3")
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, MaxKeys=sample)["Contents"]]
    server, client = cpu_by_role()["moto"], time.process_time()
    for key in keys:
        s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return (1000 * (cpu_by_role()["moto"] - server) / len(keys), 1000 * (time.process_time() - client) / len(keys))


@benchmark("objects.cloudtrail_small")
def objects_cloudtrail_small(size: str) -> None:
    if not _setup(size):
        return
    from findings.models import Finding
    from ingest.models import LogSource, ProcessedObject

    account_id = "210987654321"
    objects = small_objects(SMALL_OBJECTS[size], account_id)
    with moto_server() as endpoint:
        member = Member(account_id, endpoint)
        member.put_many(member.bucket("small-trail"), objects)
        start = time.monotonic()
        count, _ = boto3_loop(member, "small-trail")
        baseline = count / (time.monotonic() - start)
        assert count == min(len(objects), BASELINE_SAMPLE)
        server_ms, client_ms = get_cost(member, "small-trail")
        account = member.account("bench small objects")
        source = LogSource.objects.create(detector=account.detectors.get(), kind="cloudtrail", bucket="small-trail")
        seconds = _process(member, [source], len(objects), 2)
        records = sum(ProcessedObject.objects.filter(source=source).values_list("records", flat=True))
        found = Finding.objects.filter(account=account, type="Policy:IAMUser/RootCredentialUsage").first()
        assert found is not None and found.count == len(range(0, len(objects), 50)), "root usage not found"
    print(f"# {len(objects)} objects, {records:,} events: two pool processes {seconds:.1f}s; baseline: a boto3 "
          f"list+GET+gunzip+json loop over {count} of them, one process, no detection: {baseline:.0f} objects/s",
          flush=True)
    goal = TARGETS["objects.cloudtrail_small"].goal
    print(f"# one GET costs {server_ms:.1f} ms CPU in the moto server and {client_ms:.1f} ms in boto3: at "
          f"{goal:.0f} objects/s the GETs alone need {goal * (server_ms + client_ms) / 1000:.1f} of this machine's "
          f"{os.cpu_count()} cores", flush=True)
    report("objects.cloudtrail_small", len(objects) / seconds, "objects/s", baseline)


# --- latency.object_to_finding ----------------------------------------------------------------------

LATENCY_OBJECTS = 4  # per mode, PUT at evenly spread moments of one interval


def _root_object(account: str, t: datetime, suffix: str, *, root: bool = True) -> tuple[str, bytes]:
    """A small CloudTrail object; with `root`, one root-credential call in it (a finding)."""
    from ingest import synthetic as syn

    events = syn.benign_cloudtrail(n=3, account=account, region=REGION, start=t, seed=len(suffix))
    if root:
        events.append(syn.cloudtrail_event(t=t, account=account, region=REGION, name="ListBuckets",
                                           source="s3.amazonaws.com", ip="198.51.100.20", root=True))
    return syn.cloudtrail_key(account, REGION, t, suffix), gzip.compress(syn.cloudtrail_body(events))


def _latencies(member: Member, bucket: str, interval: float, tag: str) -> list[tuple[float, float]]:
    """PUT objects at evenly spread moments over one interval. Per object: seconds from its PUT until
    its ledger row is done with a finding stored (both in the object's one transaction: visible
    together), and of those, the seconds before a worker took it up (the ledger row's creation)."""
    from ingest.models import ProcessedObject

    s3 = member.client("s3")
    start = time.monotonic()
    put_at: dict[str, tuple[float, float]] = {}
    for k in range(LATENCY_OBJECTS):
        time.sleep(max(0.0, start + (k + 0.5) * interval / LATENCY_OBJECTS - time.monotonic()))
        key, body = _root_object(member.aws_account_id, datetime.now(UTC), f"{tag}{k:02d}")
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        put_at[key] = (time.monotonic(), time.time())
    seen: dict[str, tuple[float, float]] = {}
    deadline = time.monotonic() + 3 * interval + 60
    while len(seen) < len(put_at) and time.monotonic() < deadline:
        now = time.monotonic()
        for key, created in ProcessedObject.objects.filter(key__in=put_at, status="done", findings__gt=0).values_list(
                "key", "created_at"):
            seen.setdefault(key, (now - put_at[key][0], created.timestamp() - put_at[key][1]))
        time.sleep(0.05)
    if len(seen) < len(put_at):
        raise TimeoutError(f"{tag}: {len(put_at) - len(seen)} object(s) without a finding after {3 * interval + 60:.0f}s")
    return [seen[k] for k in put_at]


def _warm_up(members: list[tuple[Member, str]], polling: float, sources: list, queue: str) -> float:
    """Two objects per source at once (one for each pool process), discovered at once rather than at
    beat's first tick (a whole interval away: beat's ticks are not in step with the measured PUTs
    anyway); seconds until all are done."""
    from ingest.models import ProcessedObject
    from ingest.tasks import discover_source_task

    start = time.monotonic()
    keys = []
    for member, bucket in members:
        for k in range(2):
            # Sorts before the measured objects of the same minute: listing resumes after the last key.
            key, body = _root_object(member.aws_account_id, datetime.now(UTC), f"0warm{k}")
            member.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
            keys.append(key)
    for source in sources:
        discover_source_task.apply_async(args=[source.pk], queue=queue)
    wait_until(lambda: ProcessedObject.objects.filter(key__in=keys, status="done").count() == len(keys),
               timeout=2 * polling + 300, poll=0.2, what="the warm-up objects")
    return time.monotonic() - start


@benchmark("latency.object_to_finding")
def latency_object_to_finding(size: str) -> None:
    if not _setup(size):
        return
    from django.conf import settings

    from ingest.models import LogSource

    polling = POLL_SECONDS_SMALL if size == "small" else settings.CELERY_BEAT_SCHEDULE["ingest-discover"]["schedule"]
    sqs_every = settings.CELERY_BEAT_SCHEDULE.get("ingest-discover-sqs", {}).get("schedule", polling)
    with moto_server() as endpoint:
        listed = Member("310987654321", endpoint)
        listed.bucket("latency-listed")
        notified = Member("410987654321", endpoint)
        notified.bucket("latency-notified")
        sqs = notified.client("sqs")
        queue_url = sqs.create_queue(QueueName="latency-notified-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        notified.client("s3").put_bucket_notification_configuration(
            Bucket="latency-notified", NotificationConfiguration={"QueueConfigurations": [
                {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        sources = [
            LogSource.objects.create(detector=listed.account("latency polling").detectors.get(), kind="cloudtrail",
                                     bucket="latency-listed"),
            LogSource.objects.create(detector=notified.account("latency sqs").detectors.get(), kind="cloudtrail",
                                     bucket="latency-notified", sqs_queue_url=queue_url)]
        queue = new_queue("latency")
        with Celery(queue, extra_env={"VIGIL_INGEST_DISCOVER_SECONDS": str(int(polling))}) as celery:
            celery.worker(2)
            celery.beat()
            # Measure the steady state of long-running workers: each pool process has built its
            # threat-intel matcher (seconds, once per process; shown as "cold" below).
            cold = _warm_up([(listed, "latency-listed"), (notified, "latency-notified")], polling, sources, queue)
            by_sqs = _latencies(notified, "latency-notified", sqs_every, "q")
            by_polling = _latencies(listed, "latency-listed", polling, "p")
    for mode, every, samples in (("polling", polling, by_polling), ("sqs", sqs_every, by_sqs)):
        print(f"# {mode}, read every {every:g}s: " + ", ".join(f"{total:.1f}s (taken up after {wait:.1f}s)"
                                                          for total, wait in samples), flush=True)
    print(f"# {LATENCY_OBJECTS} objects per mode, PUT at spread-out moments of one interval; value = the worst; "
          f"warm-up (each pool process's first objects): {cold:.1f}s", flush=True)
    report("latency.object_to_finding.polling", max(t for t, _ in by_polling), "s", polling)
    report("latency.object_to_finding.sqs", max(t for t, _ in by_sqs), "s", sqs_every)


# --- memory.worker_peak_largest_object --------------------------------------------------------------

def large_object(size: str) -> tuple[Path, int]:
    """One CloudTrail object in AWS's layout, generated in chunks (cached); (path, uncompressed bytes)."""
    from ingest import synthetic as syn

    n = LARGE_OBJECT_EVENTS[size]
    path = DATA / "data" / f"large-cloudtrail-{n}.json.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with gzip.open(tmp, "wb", compresslevel=6) as out:
            out.write(b'{"Records":[')
            for chunk in range(0, n, 10_000):
                events = syn.benign_cloudtrail(n=min(10_000, n - chunk), account="510987654321", region=REGION,
                                               start=T0 + timedelta(hours=chunk // 10_000), seed=chunk)
                body = syn.cloudtrail_body(events)  # {"Records":[...]}: keep the records only
                out.write((b"," if chunk else b"") + body[body.index(b"[") + 1: body.rindex(b"]")])
            out.write(b"]}")
        tmp.rename(path)
    with gzip.open(path, "rb") as fh:
        raw = sum(len(block) for block in iter(lambda: fh.read(1 << 24), b""))
    return path, raw


def _vm(pid: int, field: str) -> float:
    """A /proc/<pid>/status memory field in MB (VmHWM: peak resident set; VmRSS: current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


@benchmark("memory.worker_peak_largest_object")
def memory_worker_peak(size: str) -> None:
    if not _setup(size):
        return
    from ingest import synthetic as syn
    from ingest.models import LogSource, ProcessedObject
    from ingest.tasks import process_object_task

    path, raw = large_object(size)
    account_id = "510987654321"
    key = syn.cloudtrail_key(account_id, REGION, T0, "large")
    with moto_server() as endpoint:
        member = Member(account_id, endpoint)
        member.put_many(member.bucket("large-trail"), [(key, path.read_bytes())])
        etag = member.client("s3").head_object(Bucket="large-trail", Key=key)["ETag"].strip('"')
        source = LogSource.objects.create(detector=member.account("bench memory").detectors.get(), kind="cloudtrail",
                                          bucket="large-trail")
        queue = new_queue("memory")
        with Celery(queue) as celery:
            worker = celery.worker(1)
            (child,) = pool_children(worker.pid)
            idle = _vm(child, "VmHWM")
            routed(queue)
            start = time.monotonic()
            process_object_task.apply_async(args=[source.pk, "large-trail", key, etag], queue=queue)
            wait_until(lambda: _done_count(key=key) == 1, timeout=900, poll=0.2, what="the large object")
            seconds = time.monotonic() - start
            peak = _vm(child, "VmHWM")
        records = ProcessedObject.objects.get(key=key).records
    print(f"# {path.stat().st_size / 1e6:.0f} MB gzip'd, {raw / 1e6:.0f} MB uncompressed, {records:,} events in "
          f"{seconds:.1f}s; pool process idle peak {idle:.0f} MB, peak while ingesting {peak:.0f} MB", flush=True)
    report("memory.worker_peak_largest_object", peak, "MB", raw / 1e6)
