"""CloudTrail: `{"Records": [...]}` objects (also bare JSON arrays and JSON lines) into event frames.

msgspec decodes only the fields the rules read into typed Structs (everything else is skipped in C);
requestParameters, responseElements and additionalEventData stay undecoded JSON text for the few
rules that need them. Objects in AWS's delivery layout are cut at record boundaries and decoded in
batches, so a large object streams.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from typing import IO, Any

import msgspec
import polars as pl

from ingest.parsers import (
    ParseStats,
    UnreadableObject,
    check_buffer,
    counted,
    cut_at_last,
    gc_paused,
    has_json_nul,
    opened,
    read_chunks,
    scrub_nul,
)

# 8 MB of JSON (~7k events) per batch: big enough for vectorised rules, small enough that decoded
# structs, the frame and the text stay well under 200 MB for any object size.
STREAM_THRESHOLD = 8 * 1024 * 1024
BATCH_EVENTS = 50_000  # events per frame when many objects are read together (iter_cloudtrail_many)
_RECORD_START = b'{"eventVersion":'


# Nested structs default to an empty instance (msgspec calls the factory only when the key is
# missing), so columns are read with C-level attrgetter chains instead of per-event Python.
# Missing text fields decode to _MISSING, not None: events_to_frame joins every field into one text
# without a Python test per value, and reads _MISSING back as null. No decoded value holds a NUL
# unless its batch's JSON has an escaped one (has_json_nul); such batches take a per-value path,
# where _MISSING is told apart from any decoded text by identity (msgspec hands out the default).
# gc=False: the structs hold only strings, flags and other structs (no cycles), so the cyclic
# collector never needs to track, and later rescan, the millions of them a large object decodes.
_MISSING = "\x00\x00"


class SessionIssuer(msgspec.Struct, gc=False):
    type: str | None = _MISSING
    userName: str | None = _MISSING
    arn: str | None = _MISSING


class SessionAttributes(msgspec.Struct, gc=False):
    mfaAuthenticated: str | bool | None = None


class SessionContext(msgspec.Struct, gc=False):
    sessionIssuer: SessionIssuer | None = msgspec.field(default_factory=SessionIssuer)
    attributes: SessionAttributes | None = msgspec.field(default_factory=SessionAttributes)
    # Short-term, task-scoped root sessions (sts:AssumeRoot) carry "assumedRoot": "true".
    assumedRoot: str | bool | None = _MISSING


class UserIdentity(msgspec.Struct, gc=False):
    type: str | None = _MISSING
    principalId: str | None = _MISSING
    arn: str | None = _MISSING
    accountId: str | None = _MISSING
    accessKeyId: str | None = _MISSING
    userName: str | None = _MISSING
    invokedBy: str | None = _MISSING
    sessionContext: SessionContext | None = msgspec.field(default_factory=SessionContext)


_NULL = msgspec.Raw(b"null")


class Event(msgspec.Struct, gc=False):
    eventTime: str | None = _MISSING
    eventSource: str | None = _MISSING
    eventName: str | None = _MISSING
    awsRegion: str | None = _MISSING
    sourceIPAddress: str | None = _MISSING
    userAgent: str | None = _MISSING
    errorCode: str | None = _MISSING
    eventID: str | None = _MISSING
    eventType: str | None = _MISSING
    eventCategory: str | None = _MISSING
    managementEvent: bool | str | None = None
    readOnly: bool | str | None = None
    recipientAccountId: str | None = _MISSING
    vpcEndpointId: str | None = _MISSING
    userIdentity: UserIdentity | None = msgspec.field(default_factory=UserIdentity)
    requestParameters: msgspec.Raw = _NULL
    responseElements: msgspec.Raw = _NULL
    additionalEventData: msgspec.Raw = _NULL
    # Logstash-style exports (OTRF) carry the time only here.
    atTimestamp: str | None = msgspec.field(default=None, name="@timestamp")


class Envelope(msgspec.Struct, gc=False):
    Records: list[Event]


class RawEnvelope(msgspec.Struct, gc=False):
    Records: list[msgspec.Raw]


_decode_envelope = msgspec.json.Decoder(Envelope).decode
_decode_raw_envelope = msgspec.json.Decoder(RawEnvelope).decode
_decode_list = msgspec.json.Decoder(list[Event]).decode
_decode_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode
_decode_event = msgspec.json.Decoder(Event).decode

SCHEMA: dict[str, pl.DataType] = {
    "event_time": pl.Datetime("us", "UTC"),
    "event_source": pl.String, "event_name": pl.String, "region": pl.String, "source_ip": pl.String,
    "user_agent": pl.String, "error_code": pl.String, "event_id": pl.String, "event_type": pl.String,
    "event_category": pl.String, "recipient_account_id": pl.String, "vpc_endpoint_id": pl.String,
    "ui_type": pl.String, "ui_principal_id": pl.String, "ui_arn": pl.String, "ui_access_key_id": pl.String,
    "ui_user_name": pl.String, "ui_invoked_by": pl.String, "ui_account_id": pl.String,
    "ui_issuer_user_name": pl.String, "ui_issuer_arn": pl.String, "ui_assumed_root": pl.Boolean,
    "request_parameters": pl.String, "response_elements": pl.String, "additional_event_data": pl.String,
}


# Event names whose requestParameters/responseElements some consumer reads: the inventory's below,
# rules add theirs with @rule(raw_events=...) (or list them here); S3 data events always (per-bucket
# usage). Decoding every event's blobs to text would cost more than parsing the event.
RAW_EVENT_NAMES: set[str] = {
    "RunInstances", "CreateNetworkInterface",
    # ingest/rules/stealth.py: trails, trail buckets, password policy, server access logging
    "CreateTrail", "UpdateTrail", "StartLogging", "StopLogging", "DeleteTrail", "PutEventSelectors", "DeleteBucket",
    "UpdateAccountPasswordPolicy", "PutBucketLogging",
    # ingest/rules/s3_policy.py: Block Public Access, bucket policies and ACLs
    "PutBucketPublicAccessBlock", "DeleteBucketPublicAccessBlock", "PutAccountPublicAccessBlock",
    "DeleteAccountPublicAccessBlock", "PutBucketPolicy", "PutBucketAcl", "CreateBucket",
    # ingest/rules/console_login.py: the sign-in's outcome is in responseElements
    "ConsoleLogin",
}

# Frame column -> Event attribute path. Only what rules, inventory and metering read: each column
# costs one pass over the events (the dominant cost after decoding); add a column here when a rule
# needs it.
_TOP = {
    "event_source": "eventSource", "event_name": "eventName", "region": "awsRegion", "source_ip": "sourceIPAddress",
    "user_agent": "userAgent", "error_code": "errorCode", "event_id": "eventID", "event_type": "eventType",
    "event_category": "eventCategory", "recipient_account_id": "recipientAccountId", "vpc_endpoint_id": "vpcEndpointId",
}
_IDENTITY = {
    "ui_type": "type", "ui_principal_id": "principalId", "ui_arn": "arn", "ui_access_key_id": "accessKeyId",
    "ui_user_name": "userName", "ui_invoked_by": "invokedBy", "ui_account_id": "accountId",
}
_ISSUER = {"ui_issuer_user_name": "userName", "ui_issuer_arn": "arn"}
_COLUMNS = {**_TOP, **{k: f"userIdentity.{v}" for k, v in _IDENTITY.items()},
            **{k: f"userIdentity.sessionContext.sessionIssuer.{v}" for k, v in _ISSUER.items()}}
# Every column's path plus the two the frame derives (time, assumed root), read in one pass.
_PATHS = (*_COLUMNS.values(), "eventTime", "userIdentity.sessionContext.assumedRoot")
_ROW = attrgetter(*_PATHS)
_PATH_PARTS = tuple(tuple(path.split(".")) for path in _PATHS)  # for the per-value path
_TEXT_COLUMNS = (*_COLUMNS, "event_time", "_assumed_root")
# Between fields and between events in the joined text (see events_to_frame).
_FIELD_SEP, _EVENT_SEP = "\x1f", "\n"
_TEXT_SCHEMA = dict.fromkeys(_TEXT_COLUMNS, pl.String)


def _raw_text(raw: msgspec.Raw) -> str | None:
    return None if raw == _NULL else bytes(raw).decode("utf-8", "replace")


def _row_lenient(event: Event) -> tuple[str | None, ...]:
    """_ROW's values (None where missing) for an event the join cannot take: an explicit JSON null on
    a path (e.g. "sessionContext": null), a boolean assumedRoot, a NUL in its batch's text."""
    values: list[str | None] = []
    for parts in _PATH_PARTS:
        value: Any = event
        for part in parts:
            value = getattr(value, part, None)
        values.append(None if value is None or value is _MISSING else str(value).lower() if isinstance(value, bool)
                      else value)
    return tuple(values)


def events_to_frame(events: list[Event], *, nul: bool = False) -> pl.DataFrame:
    """Typed events into a frame without a Python object per value on the way: every event's fields
    joined into one text in C (attrgetter, str.join), which polars' CSV reader cuts into columns.
    Turning each value into a polars string one by one, after transposing the events' tuples, cost
    twice as much (~40 ns a string). `nul`: the events' JSON had an escaped NUL."""
    n = len(events)
    if not n:
        return pl.DataFrame(schema=SCHEMA)
    frame = None if nul else _read_joined(events, n)
    if frame is None:  # a value the join cannot take (a null, a flag, a NUL) or holding a separator
        rows = [_row_lenient(event) for event in events]
        frame = pl.DataFrame(list(zip(*rows, strict=True)), schema=_TEXT_SCHEMA, orient="col")
    times = frame["event_time"]
    if times.null_count():  # Logstash-style exports: the time is only in @timestamp
        times = pl.Series("event_time", [t or e.atTimestamp for t, e in zip(times, events, strict=True)], pl.String)
    request, response, extra = _raw_columns(events, frame)
    return frame.with_columns(
        parse_times(times),
        pl.col("_assumed_root").str.to_lowercase().eq("true").alias("ui_assumed_root"),
        request.alias("request_parameters"), response.alias("response_elements"),
        extra.alias("additional_event_data"),
    ).select(list(SCHEMA))


def _read_joined(events: list[Event], n: int) -> pl.DataFrame | None:
    """The events' text columns through one joined text; None when a value is not text or would be
    misread: a carriage return (the reader drops it at a field's end), a leading byte-order mark (it
    drops that too), a field separator (its line has too many fields: the reader refuses it), a line
    separator (more lines than events)."""
    try:
        text = _EVENT_SEP.join(map(_FIELD_SEP.join, map(_ROW, events)))
    except (TypeError, AttributeError):
        return None
    if "\r" in text or text.startswith("\ufeff"):
        return None
    try:
        frame = pl.read_csv(text.encode(), has_header=False, separator=_FIELD_SEP, quote_char=None,
                            eol_char=_EVENT_SEP, new_columns=list(_TEXT_SCHEMA), schema=_TEXT_SCHEMA,
                            null_values=[_MISSING], empty_string_is_null=False)
    except (pl.exceptions.ComputeError, pl.exceptions.SchemaError):
        return None
    return frame if frame.height == n else None


def _raw_columns(events: list[Event], frame: pl.DataFrame) -> tuple[pl.Series, pl.Series, pl.Series]:
    """requestParameters, responseElements and additionalEventData as text for the events that need
    them (RAW_EVENT_NAMES, S3 data events), null elsewhere: found in the frame, converted one by one."""
    wanted = frame.select(pl.arg_where(pl.col("event_name").is_in(list(RAW_EVENT_NAMES))
                                       | (pl.col("event_category") == "Data"))).to_series()
    columns = [pl.repeat(None, frame.height, dtype=pl.String, eager=True) for _ in range(3)]
    if len(wanted):
        picked = [events[i] for i in wanted.to_list()]
        for column, attr in zip(columns, ("requestParameters", "responseElements", "additionalEventData"), strict=True):
            column.scatter(wanted, pl.Series([_raw_text(getattr(e, attr)) for e in picked], dtype=pl.String))
    return columns[0], columns[1], columns[2]


def parse_times(values: pl.Series) -> pl.Series:
    """ISO-8601 timestamps as CloudTrail and the resolver write them (with or without fraction, 'T' or ' ')."""
    # Fast path: AWS's own "2024-05-01T12:00:00Z" (4x cheaper than the general parse below).
    fast = values.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%SZ", strict=False)
    if fast.null_count() == values.null_count():
        return fast.alias(values.name)
    s = values.str.replace(" ", "T", literal=True).str.strip_suffix("Z")
    parsed = s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False).fill_null(
        s.str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False)
    )
    return parsed.dt.replace_time_zone("UTC").alias(values.name)


def _decode_records(data: bytes, stats: ParseStats, *, bare: bool) -> list[Event]:
    """Decode a whole envelope (or array); on a bad record, fall back to one record at a time."""
    try:
        return _decode_list(data) if bare else _decode_envelope(data).Records
    except (msgspec.DecodeError, UnicodeDecodeError):  # invalid UTF-8 is malformed too
        pass
    try:
        raws = _decode_raw_list(data) if bare else _decode_raw_envelope(data).Records
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # One undecodable record (bad UTF-8, a lone surrogate escape) must not cost the others:
        # in AWS's compact layout records can be cut apart without parsing.
        raws = _split_records(data)
        if not raws:
            raise UnreadableObject(f"not CloudTrail JSON: {exc}") from exc
    events = []
    for raw in raws:
        try:
            events.append(_decode_event(raw))
        except (msgspec.DecodeError, UnicodeDecodeError):
            stats.bad(bytes(raw))
    return events


def _split_records(data: bytes) -> list[bytes]:
    """Records of a compact `[{"eventVersion":...},{"eventVersion":...}]` body, cut at the
    separator (which cannot occur inside a JSON string); empty when the layout is not AWS's."""
    start, end = data.find(b"[" + _RECORD_START), data.rfind(b"]")
    if start < 0 or end <= start:
        return []
    pieces = data[start + 1:end].split(b"," + _RECORD_START)
    return [pieces[0]] + [_RECORD_START + piece for piece in pieces[1:]]


def _decode_lines(data: bytes, stats: ParseStats) -> list[Event]:
    events = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            events.append(_decode_event(line))
        except (msgspec.DecodeError, UnicodeDecodeError):
            stats.bad(line)
    if not events and stats.malformed:
        raise UnreadableObject("not CloudTrail JSON: no line decodes as an event")
    return events


def iter_cloudtrail(stream: IO[bytes], stats: ParseStats, *, batch_bytes: int = STREAM_THRESHOLD) -> Iterator[pl.DataFrame]:
    """Frames of CloudTrail events from one object, `batch_bytes` of JSON at a time."""
    for events, nul in _iter_events(stream, stats, batch_bytes):
        frame = _frame(events, nul)
        del events  # the structs go before the rules run on the frame
        yield frame


def iter_cloudtrail_many(streams: Iterable[tuple[Callable[[], IO[bytes]], ParseStats]], *,
                         batch_events: int = BATCH_EVENTS) -> Iterator[pl.DataFrame]:
    """Frames of the events of many objects (each counted in its own stats), up to about
    `batch_events` per frame. A frame costs a few milliseconds whatever its size: a quiet account's
    objects of 1-5 events would pay it once each."""
    pending: list[Event] = []
    nul = False
    for open_stream, stats in streams:
        with opened(open_stream) as stream:
            for events, has_nul in _iter_events(stream, stats, STREAM_THRESHOLD):
                pending += events
                nul = nul or has_nul
                if len(pending) >= batch_events:
                    yield _frame(pending, nul)
                    pending, nul = [], False
    if pending:
        yield _frame(pending, nul)


def _frame(events: list[Event], nul: bool) -> pl.DataFrame:
    """The events' frame; `nul`: their text had an escaped NUL (scrubbed, see scrub_nul)."""
    with gc_paused():
        frame = events_to_frame(events, nul=nul)
    return scrub_nul(frame) if nul else frame


def _iter_events(stream: IO[bytes], stats: ParseStats, batch_bytes: int) -> Iterator[tuple[list[Event], bool]]:
    """The decoded events of one object, `batch_bytes` of JSON at a time, each batch with whether
    its text has an escaped NUL. The structs are untracked (gc=False): the collector, paused while
    they are decoded, never scans them afterwards."""
    chunks = read_chunks(stream, batch_bytes)
    first = next(chunks, b"")
    stats.bytes_uncompressed += len(first)
    head = first.lstrip()[:64]
    compact = head.replace(b" ", b"").replace(b"\n", b"").replace(b"\r", b"").replace(b"\t", b"")
    if not head:
        return
    if compact.startswith(b'{"Records":[' + _RECORD_START) and len(first) >= batch_bytes:
        # AWS's own delivery format: stream it, cutting at `},{"eventVersion":`, which cannot occur
        # inside a JSON string (its quotes would be escaped).
        yield from _stream_records(first, chunks, stats)
        return
    data = b"".join(itertools.chain([first], _counted_whole(chunks, stats)))
    with gc_paused():
        if compact.startswith(b"{"):
            if compact.startswith(b'{"Records"'):
                events = _decode_records(data, stats, bare=False)
            else:
                events = _decode_lines(data, stats)  # JSON lines (one event per line)
        elif compact.startswith(b"["):
            events = _decode_records(data, stats, bare=True)
        else:
            raise UnreadableObject("not CloudTrail JSON: expected an object or an array")
    stats.records += len(events)
    if events:
        yield _handed_over(events), has_json_nul(data)


def _handed_over(events: list[Event]) -> list[Event]:
    """The events in a new list, the original emptied: a suspended generator keeps no reference to
    structs its consumer has finished with (a large object streams)."""
    out = events[:]
    events.clear()
    return out


def _counted_whole(chunks: Iterator[bytes], stats: ParseStats) -> Iterator[bytes]:
    held = 0
    for chunk in counted(chunks, stats):
        held += len(chunk)
        check_buffer(held, "a CloudTrail object outside AWS's delivery layout")  # read whole: bound it
        yield chunk


def _stream_records(first: bytes, chunks: Iterator[bytes], stats: ParseStats) -> Iterator[tuple[list[Event], bool]]:
    start = first.index(b"[") + 1
    body_chunks = itertools.chain([first[start:]], counted(chunks, stats))
    # Cut before `,{"eventVersion":` and drop the comma: each piece is whole records.
    pieces = cut_at_last(body_chunks, b"," + _RECORD_START, "a CloudTrail record", keep=0, drop=1)
    while True:
        try:
            body = next(pieces)
        except StopIteration as end:
            tail = end.value
            break
        yield from _batch(body, stats)
    tail = tail.rstrip()
    if tail.endswith(b"}"):
        tail = tail[:-1].rstrip()  # the envelope's closing brace
    if tail.endswith(b"]"):
        tail = tail[:-1]
    if tail.strip():
        yield from _batch(tail, stats)


def _batch(body: bytes, stats: ParseStats) -> Iterator[tuple[list[Event], bool]]:
    with gc_paused():
        events = _decode_records(b"[" + body + b"]", stats, bare=True)
    stats.records += len(events)
    if events:
        yield _handed_over(events), has_json_nul(body)
