"""Decompression bombs and endless records are refused with an error, within bounded memory.

The slow test feeds 10 GiB bombs (about 10 MB compressed, generated member by member) to every log
parser at the default limits in a fresh process and checks its peak RSS; the fast tests push a
bomb through the real pipeline (moto S3, STS, ledger) with small limits and check the object is
failed with the reason on the source's status, while its neighbour is processed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from accounts.models import Account, Detector
from ingest import synthetic as syn
from ingest.models import LogSource, ProcessedObject
from ingest.tasks import discover_all_task
from tests.security.bombs import gzip_bomb

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
GiB = 1024**3

CHILD = r"""
import io, json, sys
sys.path.insert(0, ".")
from ingest.parsers import ParseStats, UnreadableObject
from ingest.parsers.cloudtrail import iter_cloudtrail
from ingest.parsers.dns import iter_dns
from ingest.parsers.flow import V2_FIELDS, iter_flow
from tests.security.bombs import gzip_bomb

TEN_GIB = 10 * 1024**3
cases = {
    "flow: zeros, no line end": (iter_flow, b"\0", b""),
    "flow: header then 10 GiB of newlines": (iter_flow, b"\n", " ".join(V2_FIELDS).encode() + b"\n"),
    "dns: one endless query name": (iter_dns, b"a", b'{"query_name":"'),
    "cloudtrail: one endless record (AWS layout)": (iter_cloudtrail, b" ", b'{"Records":[{"eventVersion":"1.08","userAgent":"'),
    "cloudtrail: array of spaces": (iter_cloudtrail, b" ", b"["),
}
out = {}
for name, (parser, byte, prefix) in cases.items():
    body = io.BytesIO(b"".join(gzip_bomb(TEN_GIB, byte, prefix)))
    compressed = len(body.getvalue())
    try:
        frames = sum(f.height for f in parser(body, ParseStats()))
        out[name] = {"refused": False, "rows": frames}
    except UnreadableObject as exc:
        out[name] = {"refused": True, "reason": exc.reason, "compressed": compressed}
    del body
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the forking
# parent's size (pytest's, after a whole suite) instead of this process's own peak.
with open("/proc/self/status") as status:
    out["peak_rss"] = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
print(json.dumps(out))
"""


@pytest.mark.slow
def test_ten_gib_bombs_refused_in_bounded_memory():
    proc = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=280,
                          env={"PATH": "/usr/bin:/bin", "POLARS_MAX_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]  # an OOM kill would be -9
    result = json.loads(proc.stdout)
    peak = result.pop("peak_rss")
    for name, outcome in result.items():
        assert outcome["refused"], name
        assert outcome["compressed"] < 12 * 1024**2, name
        assert "VIGIL_INGEST_MAX_" in outcome["reason"], (name, outcome["reason"])
    # 10 GiB each, never held: the peak is the buffer limit (256 MiB) held once plus one copy of
    # the compressed bomb and the interpreter (about 400 MiB measured), not the payload.
    assert peak < 640 * 1024**2, f"peak RSS {peak:,} bytes"


@pytest.fixture
def bombed_source(db, member_factory):
    member = member_factory("444444444444", "bombs")
    account = Account.objects.create(aws_account_id=member.aws_account_id, name="Bombed", role_arn=member.role_arn,
                                     external_id=member.external_id)
    detector = Detector.objects.create(account=account, region="us-east-1")
    return member, LogSource.objects.create(detector=detector, kind="dns", bucket="bombs")


@pytest.mark.parametrize("limit_name, byte, what", [
    ("VIGIL_INGEST_MAX_OBJECT_BYTES", b"\n", "decompression bomb"),
    ("VIGIL_INGEST_MAX_BUFFER_BYTES", b"a", "a line is longer"),
])
def test_bomb_through_the_pipeline_fails_the_object_and_reports_it(bombed_source, settings, limit_name, byte, what):
    member, source = bombed_source
    settings.VIGIL_INGEST_MAX_OBJECT_BYTES = 64 * 1024**2
    settings.VIGIL_INGEST_MAX_BUFFER_BYTES = 8 * 1024**2
    first_line = json.dumps(syn.dns_query(t=T0, account=member.aws_account_id, region="us-east-1",
                                          name="example.com", instance="i-0aaa1111bbbb2222c", srcaddr="10.0.1.7"))
    bomb = b"".join(gzip_bomb(1 * GiB, byte, prefix=first_line.encode() + b"\n" + (b'{"query_name":"' if byte == b"a" else b"")))
    good = syn.dns_body([syn.dns_query(t=T0, account=member.aws_account_id, region="us-east-1", name="example.org",
                                       instance="i-0aaa1111bbbb2222c", srcaddr="10.0.1.7")])
    member.put("bombs", syn.dns_key(member.aws_account_id, "vpc-0a1b2c3d4e5f60718", T0, "bomb"),
               bomb, compress=False)
    member.put("bombs", syn.dns_key(member.aws_account_id, "vpc-0a1b2c3d4e5f60718", T0), good)

    discover_all_task.delay()

    bombed = ProcessedObject.objects.get(key__endswith="_bomb.log.gz")
    assert bombed.status == "failed" and bombed.attempts == 3
    assert what in bombed.error and limit_name in bombed.error
    fine = ProcessedObject.objects.exclude(pk=bombed.pk).get()
    assert fine.status == "done" and fine.records == 1
    source.refresh_from_db()
    assert source.objects_failed == 1 and source.objects_processed == 1 and limit_name in source.last_error
