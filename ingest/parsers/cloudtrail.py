"""CloudTrail: `{"Records": [...]}` objects (also bare JSON arrays and JSON lines) into event frames.

msgspec decodes only the fields the rules read into typed Structs (everything else is skipped in C);
requestParameters, responseElements and additionalEventData stay undecoded JSON text for the few
rules that need them. Objects in AWS's delivery layout are cut at record boundaries and decoded in
batches, so a large object streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

import msgspec
import polars as pl

from ingest.parsers import CHUNK_BYTES, ParseStats, UnreadableObject, check_buffer, gc_paused, read_chunks

STREAM_THRESHOLD = CHUNK_BYTES
_RECORD_START = b'{"eventVersion":'


class SessionIssuer(msgspec.Struct, omit_defaults=True):
    type: str | None = None
    userName: str | None = None
    arn: str | None = None


class SessionAttributes(msgspec.Struct):
    mfaAuthenticated: str | bool | None = None


class SessionContext(msgspec.Struct):
    sessionIssuer: SessionIssuer | None = None
    attributes: SessionAttributes | None = None


class UserIdentity(msgspec.Struct):
    type: str | None = None
    principalId: str | None = None
    arn: str | None = None
    accountId: str | None = None
    accessKeyId: str | None = None
    userName: str | None = None
    invokedBy: str | None = None
    sessionContext: SessionContext | None = None


_NULL = msgspec.Raw(b"null")


class Event(msgspec.Struct):
    eventTime: str | None = None
    eventSource: str | None = None
    eventName: str | None = None
    awsRegion: str | None = None
    sourceIPAddress: str | None = None
    userAgent: str | None = None
    errorCode: str | None = None
    eventID: str | None = None
    eventType: str | None = None
    eventCategory: str | None = None
    managementEvent: bool | str | None = None
    readOnly: bool | str | None = None
    recipientAccountId: str | None = None
    vpcEndpointId: str | None = None
    userIdentity: UserIdentity | None = None
    requestParameters: msgspec.Raw = _NULL
    responseElements: msgspec.Raw = _NULL
    additionalEventData: msgspec.Raw = _NULL
    # Logstash-style exports (OTRF) carry the time only here.
    atTimestamp: str | None = msgspec.field(default=None, name="@timestamp")


class Envelope(msgspec.Struct):
    Records: list[Event]


class RawEnvelope(msgspec.Struct):
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
    "event_category": pl.String, "read_only": pl.Boolean, "recipient_account_id": pl.String,
    "vpc_endpoint_id": pl.String,
    "ui_type": pl.String, "ui_principal_id": pl.String, "ui_arn": pl.String, "ui_account_id": pl.String,
    "ui_access_key_id": pl.String, "ui_user_name": pl.String, "ui_invoked_by": pl.String,
    "ui_issuer_type": pl.String, "ui_issuer_user_name": pl.String, "ui_issuer_arn": pl.String, "ui_mfa": pl.Boolean,
    "request_parameters": pl.String, "response_elements": pl.String, "additional_event_data": pl.String,
}


def _flag(value: bool | str | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    return value.lower() == "true"


def _raw_text(raw: msgspec.Raw) -> str | None:
    return None if raw == _NULL else bytes(raw).decode("utf-8", "replace")


def events_to_frame(events: list[Event]) -> pl.DataFrame:
    """Typed events into a frame (one pass per column: cheaper than a dict per event)."""
    uis = [e.userIdentity or _EMPTY_UI for e in events]
    ctxs = [u.sessionContext or _EMPTY_CTX for u in uis]
    issuers = [c.sessionIssuer or _EMPTY_ISSUER for c in ctxs]
    columns = {
        "event_time": [e.eventTime or e.atTimestamp for e in events],
        "event_source": [e.eventSource for e in events],
        "event_name": [e.eventName for e in events],
        "region": [e.awsRegion for e in events],
        "source_ip": [e.sourceIPAddress for e in events],
        "user_agent": [e.userAgent for e in events],
        "error_code": [e.errorCode for e in events],
        "event_id": [e.eventID for e in events],
        "event_type": [e.eventType for e in events],
        "event_category": [e.eventCategory for e in events],
        "read_only": [_flag(e.readOnly) for e in events],
        "recipient_account_id": [e.recipientAccountId for e in events],
        "vpc_endpoint_id": [e.vpcEndpointId for e in events],
        "ui_type": [u.type for u in uis],
        "ui_principal_id": [u.principalId for u in uis],
        "ui_arn": [u.arn for u in uis],
        "ui_account_id": [u.accountId for u in uis],
        "ui_access_key_id": [u.accessKeyId for u in uis],
        "ui_user_name": [u.userName for u in uis],
        "ui_invoked_by": [u.invokedBy for u in uis],
        "ui_issuer_type": [i.type for i in issuers],
        "ui_issuer_user_name": [i.userName for i in issuers],
        "ui_issuer_arn": [i.arn for i in issuers],
        "ui_mfa": [_flag(c.attributes.mfaAuthenticated) if c.attributes else None for c in ctxs],
        "request_parameters": [_raw_text(e.requestParameters) for e in events],
        "response_elements": [_raw_text(e.responseElements) for e in events],
        "additional_event_data": [_raw_text(e.additionalEventData) for e in events],
    }
    times = columns.pop("event_time")
    frame = pl.DataFrame(columns, schema={k: v for k, v in SCHEMA.items() if k != "event_time"})
    return frame.with_columns(parse_times(pl.Series("event_time", times, pl.String))).select(list(SCHEMA))


_EMPTY_UI = UserIdentity()
_EMPTY_CTX = SessionContext()
_EMPTY_ISSUER = SessionIssuer()


def parse_times(values: pl.Series) -> pl.Series:
    """ISO-8601 timestamps as CloudTrail and the resolver write them (with or without fraction, 'T' or ' ')."""
    s = values.str.replace(" ", "T", literal=True).str.strip_suffix("Z")
    parsed = s.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False).fill_null(
        s.str.to_datetime("%Y-%m-%dT%H:%M:%S", time_unit="us", strict=False)
    )
    return parsed.dt.replace_time_zone("UTC").alias(values.name)


def _decode_records(data: bytes, stats: ParseStats, *, bare: bool) -> list[Event]:
    """Decode a whole envelope (or array); on a bad record, fall back to one record at a time."""
    try:
        return _decode_list(data) if bare else _decode_envelope(data).Records
    except (msgspec.DecodeError, UnicodeDecodeError):
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
    data = first + b"".join(_counted(chunks, stats))
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
            yield events_to_frame(events)


def _counted(chunks: Iterator[bytes], stats: ParseStats, *, whole: bool = True) -> Iterator[bytes]:
    held = 0
    for chunk in chunks:
        stats.bytes_uncompressed += len(chunk)
        held += len(chunk)
        if whole:  # the object is read whole: bound it
            check_buffer(held, "a CloudTrail object outside AWS's delivery layout")
        yield chunk


def _stream_records(first: bytes, chunks: Iterator[bytes], stats: ParseStats) -> Iterator[pl.DataFrame]:
    start = first.index(b"[") + 1
    buffer = first[start:]
    sep = b"," + _RECORD_START
    for chunk in _counted(chunks, stats, whole=False):
        buffer += chunk
        cut = buffer.rfind(sep)
        if cut <= 0:
            check_buffer(len(buffer), "a CloudTrail record")
            continue
        body, buffer = buffer[:cut], buffer[cut + 1:]
        yield from _batch(body, stats)
    tail = buffer.rstrip()
    if tail.endswith(b"}"):
        tail = tail[:-1].rstrip()  # the envelope's closing brace
    if tail.endswith(b"]"):
        tail = tail[:-1]
    if tail.strip():
        yield from _batch(tail, stats)


def _batch(body: bytes, stats: ParseStats) -> Iterator[pl.DataFrame]:
    with gc_paused():
        events = _decode_records(b"[" + body + b"]", stats, bare=True)
        stats.records += len(events)
        if events:
            yield events_to_frame(events)
