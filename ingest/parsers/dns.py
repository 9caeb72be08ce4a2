"""Route 53 Resolver query logs (JSON lines) into DNS query frames.

Two readers, one result. DuckDB's `read_json` turns a batch into columns in C++ (about 3x faster
than msgspec decoding each query into a Struct and building the frame from Python lists, which
cost 80 % of DNS ingest), but it is lenient where msgspec is strict: a number where a name belongs
becomes its text, and it accepts NaN and trailing commas. So DuckDB reads only batches it reads
exactly as msgspec would, which AWS's own logs are: no backslash escape, every line one JSON object
msgspec accepts, every typed field a string or null (DuckDB reads them as JSON text: the first
character tells), every query with a name and a time. The answers stay the exact JSON text of the
record (a msgspec pass that skips every other field in C, and rejects what msgspec would). Any
other batch, and any batch DuckDB or msgspec rejects, goes through msgspec `decode_lines` with
per-line error recovery and malformed-record samples, as before.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from operator import attrgetter
from typing import IO, Any

import msgspec
import polars as pl

from ingest.parsers import CHUNK_BYTES, ParseStats, UnreadableObject, gc_paused, has_json_nul, line_batches, scrub_nul
from ingest.parsers.cloudtrail import parse_times


# gc=False: strings only, no cycles: the collector need not track (and rescan) every query.
class SrcIds(msgspec.Struct, gc=False):
    instance: str | None = None
    resource: str | None = None


class Query(msgspec.Struct, gc=False):
    query_timestamp: str | None = None
    query_name: str | None = None
    query_type: str | None = None
    rcode: str | None = None
    srcaddr: str | None = None
    srcport: str | int | None = None
    transport: str | None = None
    vpc_id: str | None = None
    account_id: str | None = None
    region: str | None = None
    srcids: SrcIds | None = msgspec.field(default_factory=SrcIds)
    answers: msgspec.Raw = msgspec.Raw(b"null")


MAX_NAME_CHARS = 256  # 255 octets, plus the root dot the resolver writes
_decode_lines = msgspec.json.Decoder(Query).decode_lines
_decode_one = msgspec.json.Decoder(Query).decode
_NULL = msgspec.Raw(b"null")

SCHEMA: dict[str, pl.DataType] = {
    "query_time": pl.Datetime("us", "UTC"), "query_name": pl.String, "query_type": pl.String, "rcode": pl.String,
    "srcaddr": pl.String, "srcport": pl.String, "transport": pl.String, "vpc_id": pl.String, "account_id": pl.String,
    "region": pl.String, "instance_id": pl.String, "answers": pl.String,
}


def iter_dns(stream: IO[bytes], stats: ParseStats, *, batch_bytes: int = CHUNK_BYTES) -> Iterator[pl.DataFrame]:
    first = True
    for batch in line_batches(stream, stats, batch_bytes):
        if first and not batch.lstrip().startswith(b"{"):
            raise UnreadableObject("not a Route 53 Resolver query log: expected JSON lines")
        first = False
        frame = _duckdb_frame(batch)
        if frame is not None:  # no backslash in its batch, so no escaped NUL to scrub
            stats.records += frame.height
            yield frame
            continue
        with gc_paused():  # ends before the yield: the rules run with the collector on
            try:
                queries = _decode_lines(batch)
            except (msgspec.DecodeError, UnicodeDecodeError):
                queries = _one_by_one(batch, stats)
            # A DNS name is at most 255 octets (RFC 1035); a longer one is forged, and would make
            # per-character rules (DGA, exfiltration) blow up quadratically.
            queries = [q for q in queries if (q.query_name and q.query_timestamp and len(q.query_name) <= MAX_NAME_CHARS)
                       or stats.bad(msgspec.json.encode(q))]
            stats.records += len(queries)
            frame = _frame(queries) if queries else None
            del queries
        if frame is not None:
            yield scrub_nul(frame) if has_json_nul(batch) else frame


def _one_by_one(batch: bytes, stats: ParseStats) -> list[Query]:
    out = []
    for line in batch.splitlines():
        if not line.strip():
            continue
        try:
            out.append(_decode_one(line))
        except (msgspec.DecodeError, UnicodeDecodeError):
            stats.bad(line)
    return out


_FIELDS = ("query_name", "query_type", "rcode", "srcaddr", "transport", "vpc_id", "account_id", "region")


def _frame(queries: list[Query]) -> pl.DataFrame:
    """Typed queries into a frame: one C-level attrgetter pass per column, no dict per query."""
    columns: dict[str, list] = {name: list(map(attrgetter(name), queries)) for name in _FIELDS}
    ports = list(map(attrgetter("srcport"), queries))
    columns["srcport"] = ports if all(p is None or p.__class__ is str for p in ports) else [
        None if p is None else str(p) for p in ports]
    ids = list(map(attrgetter("srcids"), queries))
    try:
        columns["instance_id"] = list(map(attrgetter("instance"), ids))
    except AttributeError:  # "srcids": null
        columns["instance_id"] = [i.instance if i is not None else None for i in ids]
    answers = list(map(attrgetter("answers"), queries))
    columns["answers"] = [None if a == _NULL else bytes(a).decode("utf-8", "replace") for a in answers]
    frame = pl.DataFrame(columns, schema={k: v for k, v in SCHEMA.items() if k != "query_time"})
    times = parse_times(pl.Series("query_time", list(map(attrgetter("query_timestamp"), queries)), pl.String))
    # Names are case-insensitive and the resolver writes them with the root dot.
    return frame.with_columns(times, pl.col("query_name").str.to_lowercase().str.strip_suffix(".")).select(list(SCHEMA))


# --- the DuckDB path -------------------------------------------------------------------------------

# Where msgspec and DuckDB could disagree: any backslash escape (escaped key names, lone surrogates,
# NUL), found with one memchr before DuckDB reads. DuckDB then reads each field msgspec types as its
# JSON text, so a value of the wrong type (a number where a name belongs, which DuckDB would turn
# into its text while msgspec rejects the record) shows in its first character; with no escapes, a
# string's text is its value in quotes, whatever the whitespace around it. Each check can only send
# a batch to msgspec, which is slower, never different.


def _plain_for_duckdb(text: bytes) -> bool:
    return text.startswith(b"{") and b"\\" not in text


_STRINGS = ("query_timestamp", *_FIELDS, "srcport")
_DUCK_COLUMNS = ("{" + ", ".join(f"{name}: 'JSON'" for name in _STRINGS)
                 + ", srcids: 'STRUCT(instance JSON, resource JSON)'}")
_DUCK_SELECT = ", ".join((*_STRINGS, "srcids.instance AS instance_id", "srcids.resource AS _resource"))
_JSON_TEXT = (*_STRINGS, "instance_id", "_resource")
_EMPTY = '""'


class _Answers(msgspec.Struct, gc=False):
    answers: msgspec.Raw = msgspec.Raw(b"null")


_decode_answers = msgspec.json.Decoder(_Answers).decode_lines
_local = threading.local()


def _duckdb() -> Any:
    """One single-threaded DuckDB connection per process and thread (workers fork: never share)."""
    import duckdb

    con = getattr(_local, "con", None)
    if con is None or _local.pid != os.getpid():
        con = duckdb.connect(":memory:")
        con.execute("SET threads=1")  # one worker process per core: no thread pool on top
        _local.con, _local.pid = con, os.getpid()
    return con


def _duckdb_frame(batch: bytes) -> pl.DataFrame | None:
    """The batch's frame read by DuckDB, or None when the batch must go through msgspec."""
    if not _plain_for_duckdb(batch):
        return None
    try:
        answers = _decode_answers(batch)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        fh.write(batch)
    try:
        path = fh.name.replace("'", "''")
        # The path is our own temporary file; the columns are constants.
        query = (f"SELECT {_DUCK_SELECT} FROM read_json('{path}', format='newline_delimited', "  # noqa: S608
                 f"columns={_DUCK_COLUMNS})")
        frame = pl.DataFrame(_duckdb().sql(query))
    except Exception:  # anything DuckDB cannot read, msgspec decides about
        return None
    finally:
        os.unlink(fh.name)
    # The same records for both readers: DuckDB reads one object per non-blank line or fails, so
    # equal counts mean msgspec read the same objects, in the same order.
    if frame.height != len(answers):
        return None
    # Queries msgspec's path would count as malformed (no name or time, an over-long name): it
    # keeps their samples, so it reads this batch.
    bad = frame.select(pl.any_horizontal(
        ~pl.col(*_JSON_TEXT).str.starts_with('"').fill_null(True),  # not a string: msgspec rejects the record
        pl.col("query_name", "query_timestamp").fill_null(_EMPTY) == _EMPTY,
        pl.col("query_name").str.len_chars() > MAX_NAME_CHARS + 2,  # with its quotes
    )).to_series()
    if bad.any():
        return None
    raw = b"\n".join(map(attrgetter("answers"), answers)).decode("utf-8", "replace")
    joined = pl.Series("answers", [raw]).str.split("\n").explode()
    # Each string's JSON text is the string in quotes, and with no escapes it holds no other quote:
    # stripping quotes leaves the value.
    unquoted = {name: pl.col(name).str.strip_chars('"') for name in (*_FIELDS, "srcport", "instance_id")}
    frame = frame.select(
        parse_times(frame["query_timestamp"].str.strip_chars('"')).alias("query_time"),
        unquoted.pop("query_name").str.to_lowercase().str.strip_suffix("."),
        **unquoted,
        answers=pl.when(joined == "null").then(None).otherwise(joined),
    )
    return frame.select(list(SCHEMA))
