"""Parsers: real public samples, streaming in bounded batches, malformed records, unreadable objects."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from ingest import synthetic as syn
from ingest.parsers import ParseStats, UnreadableObject
from ingest.parsers.cloudtrail import iter_cloudtrail, iter_cloudtrail_many
from ingest.parsers.dns import iter_dns
from ingest.parsers.flow import iter_flow

EXTERNAL = Path("/work/shared/data/external")
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def parse(fn, data: bytes, **kw):
    stats = ParseStats()
    frames = list(fn(io.BytesIO(data), stats, **kw))
    return frames, stats


@pytest.mark.parametrize("folder", ["invictus-ir-aws-dataset/CloudTrail", "stratus-red-team/docs/detonation-logs",
                                    "otrf-security-datasets/aws"])
def test_cloudtrail_public_samples_parse_completely(folder):
    total = 0
    for path in sorted((EXTERNAL / folder).glob("*.json")):
        frames, stats = parse(iter_cloudtrail, path.read_bytes())
        assert stats.malformed == 0, (path, stats.malformed_samples)
        for frame in frames:
            assert frame["event_time"].null_count() == 0 and frame["event_name"].null_count() == 0
        total += stats.records
    assert total > 100


def test_cloudtrail_odd_ips_are_kept_as_strings():
    path = next((EXTERNAL / "stratus-red-team/docs/detonation-logs").glob("*.json"))
    frames, _ = parse(iter_cloudtrail, path.read_bytes())
    assert frames[0]["source_ip"].dtype.is_(frames[0]["event_name"].dtype)


def test_cloudtrail_large_object_streams_in_batches_with_same_result():
    events = syn.benign_cloudtrail(n=3000, account="123456789012", region="us-east-1", start=T0)
    body = gzip.compress(syn.cloudtrail_body(events))
    whole, whole_stats = parse(iter_cloudtrail, body)
    batches, stats = parse(iter_cloudtrail, body, batch_bytes=64 * 1024)
    assert len(whole) == 1 and len(batches) > 10
    assert stats.records == whole_stats.records == 3000
    assert sum(f.height for f in batches) == 3000
    assert stats.bytes_uncompressed == whole_stats.bytes_uncompressed == len(syn.cloudtrail_body(events))


def test_cloudtrail_many_objects_read_into_one_frame_each_counted_on_its_own():
    """A batch of small objects: the same rows as reading each alone, in one frame (up to
    batch_events), with each object's records, malformed records and bytes in its own stats."""
    bodies = []
    for i, n in enumerate((3, 1, 5, 2)):
        events = syn.benign_cloudtrail(n=n, account="123456789012", region="us-east-1", start=T0, seed=i)
        bodies.append(gzip.compress(syn.cloudtrail_body(events)))
    lines = syn.benign_cloudtrail(n=2, account="123456789012", region="us-east-1", start=T0, seed=9)
    bodies.append("\n".join(json.dumps(e) for e in lines).encode() + b"\n{not json\n")  # JSON lines, one bad
    stats = [ParseStats() for _ in bodies]
    frames = list(iter_cloudtrail_many([(lambda b=b: io.BytesIO(b), st) for b, st in zip(bodies, stats, strict=True)]))
    alone = [parse(iter_cloudtrail, b) for b in bodies]
    assert len(frames) == 1
    assert frames[0].equals(pl.concat([f for fs, _ in alone for f in fs]))
    assert [s.records for s in stats] == [3, 1, 5, 2, 2] == [st.records for _, st in alone]
    assert [s.malformed for s in stats] == [0, 0, 0, 0, 1]
    assert [s.bytes_uncompressed for s in stats] == [st.bytes_uncompressed for _, st in alone]
    split = list(iter_cloudtrail_many([(lambda b=b: io.BytesIO(b), ParseStats()) for b in bodies], batch_events=4))
    assert [f.height for f in split] == [4, 5, 4] and pl.concat(split).equals(frames[0])


def test_cloudtrail_bad_record_is_counted_and_the_rest_kept():
    events = syn.benign_cloudtrail(n=5, account="123456789012", region="us-east-1", start=T0)
    events[2]["eventTime"] = {"not": "a string"}
    frames, stats = parse(iter_cloudtrail, json.dumps({"Records": events}).encode())
    assert stats.records == 4 and stats.malformed == 1 and stats.malformed_samples[0].startswith("{")


@pytest.mark.parametrize("body", [b"\x1f\x8b\x08\x00garbage-after-the-magic", b"plain text, not JSON"])
def test_unreadable_objects_raise_with_reason(body):
    with pytest.raises(UnreadableObject) as info:
        parse(iter_cloudtrail, body)
    assert info.value.reason


def test_flow_custom_format_and_malformed_rows():
    text = ("version vpc-id instance-id interface-id srcaddr dstaddr srcport dstport protocol start end action "
            "flow-direction\n"
            "5 vpc-1 i-0abc eni-1 10.0.0.5 198.51.100.7 44321 443 6 1714564800 1714564860 ACCEPT egress\n"
            "5 vpc-1 i-0abc eni-1 10.0.0.5 not-enough-fields\n")
    frames, stats = parse(iter_flow, gzip.compress(text.encode()))
    assert stats.records == 1 and stats.malformed == 1
    row = frames[0].row(0, named=True)
    assert (row["instance_id"], row["flow_direction"], row["dstport"]) == ("i-0abc", "egress", 443)
    assert row["start_time"] == T0


def test_flow_nodata_rows_are_not_malformed():
    lines = [syn.FLOW_V2_HEADER, "2 123456789012 eni-1 - - - - - - - 1714564800 1714564860 - NODATA"]
    frames, stats = parse(iter_flow, "\n".join(lines).encode())
    assert stats.malformed == 0 and stats.records == 0


def test_flow_unknown_header_is_unreadable():
    with pytest.raises(UnreadableObject):
        parse(iter_flow, b"timestamp,src,dst\n1,2,3\n")


def test_dns_panther_style_and_malformed_lines():
    good = syn.dns_query(t=T0, account="123456789012", region="us-east-1", name="WWW.Example.COM", instance="i-1",
                         srcaddr="10.0.0.1")
    panther = {"query_name": "dynamodb.us-west-2.amazonaws.com", "query_timestamp": "2022-06-25 00:27:53",
               "answers": {"Rdata": "1.2.3.4"}, "srcids": {"instance": "i-0abc234"}, "srcaddr": "5.6.7.8"}
    body = (json.dumps(good) + "\n{broken\n" + json.dumps(panther) + "\n" + json.dumps({"query_name": "x"}) + "\n")
    frames, stats = parse(iter_dns, body.encode())
    frame = frames[0]
    assert stats.records == 2 and stats.malformed == 2
    assert frame["query_name"].to_list() == ["www.example.com", "dynamodb.us-west-2.amazonaws.com"]
    assert frame["query_time"].to_list()[1] == datetime(2022, 6, 25, 0, 27, 53, tzinfo=UTC)


def test_invalid_utf8_in_a_record_is_malformed_not_a_crash():
    events = syn.benign_cloudtrail(n=3, account="123456789012", region="us-east-1", start=T0)
    body = json.dumps({"Records": events}).encode().replace(b"aws-cli", b"aws-\x80cli", 1)
    frames, stats = parse(iter_cloudtrail, body)
    assert stats.records == 2 and stats.malformed == 1
    lines = syn.dns_body([syn.dns_query(t=T0, account="123456789012", region="us-east-1", name=n, instance="i-1",
                                        srcaddr="10.0.0.1") for n in ("a.example", "b.example")])
    frames, stats = parse(iter_dns, lines.replace(b"a.example", b"a.\xffexample"))
    assert stats.records == 1 and stats.malformed == 1


def test_has_json_nul_finds_an_escaped_nul_wherever_backslashes_are():
    from ingest.parsers import has_json_nul

    assert not has_json_nul(b'{"userAgent":"curl/8"}')
    assert not has_json_nul(b'{"policy":"{\\"Effect\\":\\"Allow\\"}","n":"u000"}')  # backslashes, no NUL
    assert has_json_nul(b'{"userAgent":"a\\u0000b"}')
    assert has_json_nul(b'\\u0000' + b"0" * 10_000)


@pytest.mark.parametrize("batch_bytes", [None, 4096])  # whole, and streamed in AWS's layout
def test_cloudtrail_escaped_nul_is_scrubbed_in_every_batch(batch_bytes):
    events = syn.benign_cloudtrail(n=200, account="123456789012", region="us-east-1", start=T0)
    events[150]["userAgent"] = "evil\u0000agent"
    events[10]["requestParameters"] = {"policy": '{"Effect": "Allow"}'}  # escaped quotes elsewhere
    options = {"batch_bytes": batch_bytes} if batch_bytes else {}
    frames, stats = parse(iter_cloudtrail, gzip.compress(syn.cloudtrail_body(events)), **options)
    agents = pl.concat(frames)["user_agent"].to_list()
    assert stats.records == 200 and "evil\ufffdagent" in agents
    assert not any("\x00" in a for a in agents if a)


def test_an_objects_short_tail_joins_its_last_batch():
    """A sliver after the last full batch rides with it (one frame's fixed costs, not two); a tail of
    half a batch or more stays a batch of its own; no line is lost or cut either way."""
    from ingest.parsers import line_batches, tail_joined

    assert list(tail_joined([b"a" * 10, b"b" * 10, b"c" * 4], 10)) == [b"a" * 10, b"b" * 10 + b"c" * 4]
    assert list(tail_joined([b"a" * 10, b"c" * 5], 10)) == [b"a" * 10, b"c" * 5]
    assert list(tail_joined([b"c" * 3], 10)) == [b"c" * 3]
    assert list(tail_joined([], 10)) == []
    lines = [f"line {i:05d}\n".encode() for i in range(1000)]  # 11 bytes each: 11,000 bytes
    for chunk, expected in ((4096, 3), (5000, 2), (5600, 2)):
        batches = list(line_batches(io.BytesIO(b"".join(lines)), ParseStats(), chunk))
        assert b"".join(batches) == b"".join(lines)
        assert all(b.endswith(b"\n") for b in batches)
        assert len(batches) == expected, (chunk, [len(b) for b in batches])


@pytest.mark.parametrize("n", [1, 2, 50])
def test_cloudtrail_columns_of_one_value_read_the_same_as_any_other(n):
    """A trail's object is one account and region: many columns hold one value throughout. They read
    as the per-event values, whatever the batch size, and with nothing else varying."""
    events = [syn.cloudtrail_event(t=T0, account="123456789012", region="eu-west-1", name="ListBuckets",
                                   source="s3.amazonaws.com", ip="198.51.100.7") for _ in range(n)]
    for event in events:
        event["eventID"] = "same-id"  # every column one value: the frame must still have n rows
    frames, _ = parse(iter_cloudtrail, gzip.compress(syn.cloudtrail_body(events)))
    frame = pl.concat(frames)
    assert frame.height == n
    assert frame["region"].to_list() == ["eu-west-1"] * n
    assert frame["recipient_account_id"].to_list() == ["123456789012"] * n
    assert frame["event_id"].to_list() == ["same-id"] * n
    assert frame["error_code"].to_list() == [None] * n
    assert frame["region"].dtype == pl.String and frame["error_code"].dtype == pl.String


# Values that the joined text (ingest.parsers.cloudtrail.events_to_frame) must not misread: its
# separators, a line end, the text of its missing-field marker, empty text, explicit nulls, flags.
@pytest.mark.parametrize(("path", "value"), [
    (("userAgent",), "line\nbreak"), (("userAgent",), "unit\x1fseparator"), (("userAgent",), "ends\r"),
    (("userAgent",), "\r\n"), (("userAgent",), ""), (("userAgent",), "\x00\x00"), (("errorCode",), None),
    (("eventName",), ""), (("userIdentity", "sessionContext"), None), (("userIdentity",), None),
    (("userIdentity", "sessionContext", "assumedRoot"), True), (("userIdentity", "sessionContext", "assumedRoot"), "TRUE"),
    (("userIdentity", "arn"), "arn:aws:iam::123456789012:user/\u202eevil\u0000"),
    (("eventSource",), "\ufeffs3.amazonaws.com"),
])
@pytest.mark.parametrize("index", [0, 11, 29])
def test_cloudtrail_every_text_value_reads_exactly_whatever_it_holds(path, value, index):
    events = syn.benign_cloudtrail(n=30, account="123456789012", region="us-east-1", start=T0)
    for event in events:
        event["userIdentity"]["sessionContext"] = {"sessionIssuer": {"userName": "ops"}}
    target = events[index]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    frames, stats = parse(iter_cloudtrail, gzip.compress(syn.cloudtrail_body(events)))
    frame = pl.concat(frames)
    assert stats.records == 30 and stats.malformed == 0 and frame.height == 30

    def read(event, *keys):
        for key in keys:
            event = event.get(key) if isinstance(event, dict) else None
        return event.replace("\x00", "\ufffd") if isinstance(event, str) else event  # NUL is scrubbed

    assert frame["event_id"].to_list() == [e["eventID"] for e in events]  # rows stay aligned
    assert frame["user_agent"].to_list() == [read(e, "userAgent") for e in events]
    assert frame["event_source"].to_list() == [read(e, "eventSource") for e in events]
    assert frame["error_code"].to_list() == [read(e, "errorCode") for e in events]
    assert frame["event_name"].to_list() == [read(e, "eventName") for e in events]
    assert frame["ui_arn"].to_list() == [read(e, "userIdentity", "arn") for e in events]
    assert frame["ui_issuer_user_name"].to_list() == [
        read(e, "userIdentity", "sessionContext", "sessionIssuer", "userName") for e in events]
    roots = [read(e, "userIdentity", "sessionContext", "assumedRoot") for e in events]
    assert frame["ui_assumed_root"].to_list() == [None if r is None else str(r).lower() == "true" for r in roots]
    assert frame["event_time"].null_count() == 0
