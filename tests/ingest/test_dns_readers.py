"""The DuckDB reader of DNS query logs gives exactly what the msgspec reader gives, for every input.

Each case is a batch: AWS-style lines around one odd line. The reference is the same batch with the
DuckDB path switched off; frames and parse stats must be equal (DuckDB may decline a batch, never
read it differently)."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ingest import synthetic as syn
from ingest.parsers import ParseStats
from ingest.parsers import dns as dns_parser

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
GOOD = syn.dns_body([syn.dns_query(t=T0, account="123456789012", region="us-east-1", name=n, instance="i-1",
                                   srcaddr="10.0.0.1") for n in ("a.example", "B.Example")])
LINE = GOOD.split(b"\n")[0]


def _with(**fields: object) -> bytes:
    record = json.loads(LINE)
    record.update(fields)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def _without(*keys: str) -> bytes:
    record = json.loads(LINE)
    for key in keys:
        record.pop(key)
    return json.dumps(record, separators=(",", ":")).encode()


ODD: list[bytes] = [
    LINE,
    _with(query_name=5), _with(query_name=1.5), _with(query_name=True), _with(query_name=None), _with(query_name=""),
    _with(query_name={"a": "b"}), _with(query_name=["x"]), _with(query_name="{curly.example"),
    _with(query_name="[square.example"), _with(query_name="x" * 255 + "."), _with(query_name="x" * 256 + "."),
    _with(query_name="é" * 200 + "."), _with(query_name="ünïcode.例え.jp."), _with(query_name="with space.example."),
    _with(query_name="tab\there."), _with(query_name='quo"te.'), _with(query_name="nul\x00.example."),
    _with(query_name="null"), _with(query_name="a:b.example"), _with(query_name='a":1.example'),
    _with(query_timestamp=1714564800), _with(query_timestamp=None), _with(query_timestamp=""),
    _with(query_timestamp="2022-06-25 00:27:53"), _with(query_timestamp="not a time"),
    _with(query_timestamp="2024-05-01T00:00:00.123456789Z"), _with(query_timestamp="2024-05-01T00:00:00+02:00"),
    _with(srcport=53211), _with(srcport=-1), _with(srcport=1.0), _with(srcport=10**30), _with(srcport=None),
    _with(srcport=True), _with(srcport=""), _with(srcport="0053"),
    _with(srcids=None), _with(srcids="i-1"), _with(srcids=5), _with(srcids=[]), _with(srcids=["i-1"]), _with(srcids={}),
    _with(srcids={"instance": 5}), _with(srcids={"instance": None}), _with(srcids={"instance": {"x": 1}}),
    _with(srcids={"instance": "i-1", "resource": "r-1"}), _with(srcids={"resource": 7}),
    _with(srcids={"instance": "i-1", "other": 1.5}), _with(srcids={"instance": "{i-1"}),
    _with(answers=None), _with(answers=[]), _with(answers="text"), _with(answers=5), _with(answers={"Rdata": "1.2.3.4"}),
    _with(answers=[{"Rdata": "v=spf1 include:x ~all", "Type": "TXT", "Class": "IN"}]),
    _with(answers=[{"Rdata": "1.2.3.4", "TTL": 300}]), _with(answers=[1, 2.50, -0, 1e5, True, False, None]),
    _with(answers=[[["deep"]]]), _with(answers=[{"Rdata": "ünï"}]),
    _with(version=1.1), _with(version=True), _with(extra={"nested": [1, 2, {"x": None}]}), _with(extra=1e400),
    _with(Query_Name="upper.example."), _with(rcode=None), _with(rcode=0), _with(region=["us"]),
    _with(vpc_id={"id": "vpc"}), _with(account_id=123456789012), _with(transport="UDP "),
    _without("srcids"), _without("answers"), _without("srcport"), _without("query_name"), _without("query_timestamp"),
    b"{}", b"[]", b"5", b'"string"', b"null", b"{broken", b"", b"   ", b"\t", b"\r", b"\f", LINE + b"\r", b"  " + LINE, LINE + b"  ",
    LINE.replace(b'":"', b'": "'), LINE.replace(b'":"', b'" :"'), LINE.replace(b",", b" , "), LINE.replace(b",", b",\t"),
    LINE.replace(b'{"version"', b'{ "version"'), LINE[:-1] + b",}", LINE[:-1] + b',"x":NaN}', LINE[:-1] + b',"x":Infinity}',
    LINE[:-1] + b',"x":nan}', LINE[:-1] + b',"x":01}', LINE[:-1] + b',"x":.5}', LINE[:-1] + b',"x":1.}',
    LINE[:-1] + b',"x":-}', LINE[:-1] + b',"x":1e}', LINE[:-1] + b',"x":tru}', LINE[:-1] + b',"x":nul}',
    LINE[:-1] + b'/*c*/}', LINE[:-1] + b",'x':'y'}", LINE[:-1] + b',"x":"y"}}', LINE + LINE,
    LINE.replace(b'"query_name"', b'"query_name":"dup.example.","query_name"'),
    LINE.replace(b'"instance"', b'"instance":"i-0","instance"'),
    LINE.replace(b'"query_name"', b'"query_name":5,"query_name"'), LINE.replace(b'"srcids"', b'"srcids":5,"srcids"'),
    LINE.replace(b'"query_name":"a.example."', b'"query_name":"a.example.","query_name":5'),
    LINE.replace(b'"answers"', b'"answers":5,"answers"'), _with(query_name="line\u2028sep.example."),
    LINE.replace(b'"query_name"', b'"query\\u005fname"'), LINE.replace(b"a.example", b"a\\u002eexample"),
    LINE.replace(b"a.example", b"a\\\\example"), LINE.replace(b"a.example", b"a\\ud800example"),
    LINE.replace(b"a.example", b"a.\xffexample"), LINE.replace(b"a.example", b"a.\xc3example"),
    LINE.replace(b"a.example", b"a.\x7fexample"), LINE.replace(b"a.example", b"a.\x01example"),
    LINE.replace(b'"answers":[', b'"answers":[ '), LINE.replace(b'"Class":"IN"}', b'"Class":"IN" }'),
]


def _read(batch: bytes, *, duckdb: bool, monkeypatch: pytest.MonkeyPatch,
          **kw: int) -> tuple[pl.DataFrame | None, ParseStats]:
    with monkeypatch.context() as patch:
        if not duckdb:
            patch.setattr(dns_parser, "_duckdb_frame", lambda batch: None)
        stats = ParseStats()
        try:
            frames = list(dns_parser.iter_dns(io.BytesIO(batch), stats, **kw))
        except Exception as error:  # both readers must fail alike
            return None, error  # type: ignore[return-value]
    return (pl.concat(frames) if frames else None), stats


def _same(batch: bytes, monkeypatch: pytest.MonkeyPatch, **kw: int) -> None:
    fast, fast_stats = _read(batch, duckdb=True, monkeypatch=monkeypatch, **kw)
    slow, slow_stats = _read(batch, duckdb=False, monkeypatch=monkeypatch, **kw)
    if isinstance(slow_stats, Exception):
        assert type(fast_stats) is type(slow_stats)
        return
    assert fast_stats == slow_stats
    if slow is None:
        assert fast is None
    else:
        assert_frame_equal(fast, slow)


@pytest.mark.parametrize("odd", ODD, ids=range(len(ODD)))
def test_duckdb_reads_each_odd_batch_as_msgspec_does(odd, monkeypatch):
    _same(GOOD + odd + b"\n" + GOOD, monkeypatch)
    _same(odd + b"\n" + GOOD, monkeypatch)
    _same(GOOD + odd, monkeypatch)


def test_the_plain_aws_batch_takes_the_duckdb_path():
    assert dns_parser._duckdb_frame(GOOD + LINE + b"\n") is not None


def test_crlf_lines_read_alike(monkeypatch):
    _same((GOOD + LINE + b"\n").replace(b"\n", b"\r\n"), monkeypatch)


def test_small_batches_read_alike(monkeypatch):
    _same(b"".join(GOOD + odd + b"\n" for odd in ODD[:40]), monkeypatch, batch_bytes=4096)


def test_random_byte_edits_read_alike(monkeypatch):
    rng = random.Random(7)
    alphabet = b' \t"\\:,{}[]0123456789-.eEntfrualsN\xc3\xa9\xff{}'
    for _ in range(400):
        line = bytearray(LINE)
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(line))
            if rng.random() < 0.5:
                line[at] = rng.choice(alphabet)
            else:
                line.insert(at, rng.choice(alphabet))
        _same(GOOD + bytes(line) + b"\n" + GOOD, monkeypatch)
