"""One log object through the detection pipeline: parse → learn inventory → enrich → rules → meter.

Pure of Django models: the same code serves Celery workers (ingest.services, which loads and saves
state and findings around it) and the offline `manage.py analyze` command.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any

import polars as pl

from findings.catalog import CLOUD_TRAIL, DNS_LOGS, FLOW_LOGS, S3_LOGS
from ingest.inventory import Inventory
from ingest.parsers import MALFORMED_SAMPLES, ParseStats, UnreadableObject, opened, scrub_nul
from ingest.parsers.cloudtrail import iter_cloudtrail, iter_cloudtrail_many
from ingest.parsers.dns import iter_dns
from ingest.parsers.flow import iter_flow
from ingest.rules import CLOUDTRAIL, DNS, FLOW, Detection, RuleContext, load_rules, rules_for
from ingest.rules._net import addresses_encoded, frame_addresses, oriented
from ingest.state import MemoryStateStore

logger = logging.getLogger(__name__)

PARSERS = {CLOUDTRAIL: iter_cloudtrail, FLOW: iter_flow, DNS: iter_dns}

# AWS's S3 layouts (guardduty.md): the account and, for CloudTrail and flow logs, the region.
KEY_PATTERNS = [
    (CLOUDTRAIL, re.compile(r"AWSLogs/(?:o-[a-z0-9]+/)?(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/")),
    (FLOW, re.compile(r"AWSLogs/(?P<account>\d{12})/vpcflowlogs/(?P<region>[a-z0-9-]+)/")),
    (DNS, re.compile(r"AWSLogs/(?P<account>\d{12})/vpcdnsquerylogs/(?P<vpc>[^/]+)/")),
]
CLOUDTRAIL_NAME = re.compile(r"(?P<account>\d{12})_CloudTrail_(?P<region>[a-z0-9-]+)_")


@dataclass(frozen=True)
class ObjectInfo:
    kind: str | None
    aws_account_id: str | None = None
    region: str | None = None


def classify_key(key: str) -> ObjectInfo:
    """Log type, account and region from an S3 key or a local path in AWS's layouts."""
    for kind, pattern in KEY_PATTERNS:
        match = pattern.search(key)
        if match:
            return ObjectInfo(kind, match.group("account"), match.groupdict().get("region"))
    match = CLOUDTRAIL_NAME.search(key.rsplit("/", 1)[-1])
    if match:
        return ObjectInfo(CLOUDTRAIL, match.group("account"), match.group("region"))
    return ObjectInfo(None)


def sniff_kind(head: bytes) -> str | None:
    """Log type from the first uncompressed bytes (for files outside AWS's layouts)."""
    text = head.lstrip()
    if text.startswith((b"[", b'{"Records"')) or b'"eventName"' in text[:4096] or b'"eventVersion"' in text[:4096]:
        return CLOUDTRAIL
    if b'"query_name"' in text[:4096]:
        return DNS
    first = text.split(b"\n", 1)[0]
    if first.startswith(b"version ") or re.match(rb"^\d+ \d{12} ", first):
        return FLOW
    return None


@dataclass
class ObjectResult:
    kind: str
    stats: ParseStats = field(default_factory=ParseStats)
    detections: list[Detection] = field(default_factory=list)
    # (data source, region, day, resource) -> [events, bytes]
    usage: dict[tuple[str, str, date, str], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    first_event: Any = None
    last_event: Any = None


_DEFAULT: Any = object()


class Pipeline:
    """Analyse objects of one account with one matcher, inventory and state store."""

    def __init__(self, *, matcher: Any, inventory: Inventory | None = None, state: Any = None,
                 anomaly: Any = _DEFAULT) -> None:
        load_rules()  # before parsing: rules declare which CloudTrail blobs the parser must keep
        self.matcher = matcher
        self.inventory = inventory or Inventory()
        self.state = state if state is not None else MemoryStateStore()
        # Behavioural baselines (ingest.anomaly.stage): in memory by default (offline analysis
        # learns across the run); workers pass the database stage; None switches it off.
        if anomaly is _DEFAULT:
            from ingest.anomaly.stage import anomaly_stage_default

            anomaly = anomaly_stage_default()
        self.anomaly = anomaly

    def process(self, kind: str, stream: IO[bytes], *, aws_account_id: str, region: str) -> ObjectResult:
        result = ObjectResult(kind)
        # The parsers scrub NUL from their frames (ingest.parsers.scrub_nul) where the text has one.
        for frame in PARSERS[kind](stream, result.stats):
            self.process_frame(kind, frame, result, aws_account_id=aws_account_id, region=region)
        self._meter_bytes(result, region)
        return result

    def process_many(self, kind: str, streams: Iterable[tuple[str, Callable[[], IO[bytes]]]], *, aws_account_id: str,
                     region: str) -> tuple[ObjectResult, dict[str, ParseStats]]:
        """Many small objects of one source as one: each parsed on its own (its own stats), their
        records analysed in one frame. Every rule and model costs about the same for 3 records as for
        3,000, so a quiet account's hundreds of tiny CloudTrail files pay it once, not once each."""
        result = ObjectResult(kind)
        streams = list(streams)
        per_object = {name: ParseStats() for name, _ in streams}
        opened = [(open_stream, per_object[name]) for name, open_stream in streams]
        if kind == CLOUDTRAIL:  # the objects' decoded events in frames of up to BATCH_EVENTS
            frames = list(iter_cloudtrail_many(opened))
        else:
            frames = _joined([frame for open_stream, stats in opened for frame in _parsed(kind, open_stream, stats)])
        for stats in per_object.values():
            for attr in ("records", "malformed", "bytes_uncompressed"):
                setattr(result.stats, attr, getattr(result.stats, attr) + getattr(stats, attr))
            result.stats.malformed_samples = (result.stats.malformed_samples + stats.malformed_samples)[:MALFORMED_SAMPLES]
        # The parsers scrubbed NUL from their frames already (ingest.parsers.scrub_nul).
        for frame in frames:
            self.process_frame(kind, frame, result, aws_account_id=aws_account_id, region=region)
        self._meter_bytes(result, region)
        return result, per_object

    def process_frame(self, kind: str, frame: pl.DataFrame, result: ObjectResult, *, aws_account_id: str,
                      region: str) -> None:
        time_col = {CLOUDTRAIL: "event_time", FLOW: "start_time", DNS: "query_time"}[kind]
        frame = frame.filter(pl.col(time_col).is_not_null())
        if frame.is_empty():
            return
        if kind == FLOW:
            frame = addresses_encoded(frame)
        first, last = frame[time_col].min(), frame[time_col].max()
        result.first_event = first if result.first_event is None else min(result.first_event, first)
        result.last_event = last if result.last_event is None else max(result.last_event, last)
        self.inventory.learn(kind, frame)
        ctx = self._context(kind, frame, aws_account_id=aws_account_id, region=region)
        for rule in rules_for(kind):
            ctx.rule = rule
            for detection in rule.evaluate(frame, ctx):
                detection.region = detection.region or region
                result.detections.append(detection)
                ctx.detections.append(detection)
        if self.anomaly is not None and kind in (CLOUDTRAIL, FLOW):
            # After the rules, in frame order: score each principal/instance-hour, then learn it.
            # Flow records are read the way the rules read them (their orientation, computed once).
            flows = oriented(frame, ctx) if kind == FLOW else None
            for detection in self.anomaly.detect(kind, frame, aws_account_id=aws_account_id, region=region,
                                                 inventory=self.inventory, oriented=flows):
                detection.region = detection.region or region
                result.detections.append(detection)
        self._meter(kind, frame, result, region, span=(first, last))

    def _context(self, kind: str, frame: pl.DataFrame, *, aws_account_id: str, region: str) -> RuleContext:
        ip_hits: dict = {}
        domain_hits: dict = {}
        trusted: set[str] = set()
        addresses = None
        if kind == CLOUDTRAIL:
            ip_hits, trusted = self.matcher.classify_ips(frame["source_ip"].drop_nulls().unique().to_list())
        elif kind == FLOW:
            addresses = frame_addresses(frame)
            ip_hits, trusted = self.matcher.classify_ips(addresses.to_list())
        else:
            # Resolver names repeat heavily: match each distinct name once (limits.md finding 6).
            domain_hits = self.matcher.lookup_domains(frame["query_name"].drop_nulls().unique().to_list())
        return RuleContext(aws_account_id=aws_account_id, region=region, ip_hits=ip_hits, domain_hits=domain_hits,
                           trusted_ips=trusted, inventory=self.inventory, state=self.state, addresses=addresses)

    def _meter(self, kind: str, frame: pl.DataFrame, result: ObjectResult, region: str, *,
               span: tuple[Any, Any]) -> None:
        """`span`: the frame's first and last event times (process_frame has them)."""
        if kind == CLOUDTRAIL:
            data = (pl.col("event_category") == "Data") & (pl.col("event_source") == "s3.amazonaws.com")
            counted = frame.select(
                pl.when(data.fill_null(False)).then(pl.lit(S3_LOGS)).otherwise(pl.lit(CLOUD_TRAIL)).alias("source"),
                pl.col("region").fill_null(region),
                pl.col("event_time").dt.date().alias("day"),
                pl.when(data.fill_null(False)).then(
                    pl.col("request_parameters").str.json_path_match("$.bucketName")).otherwise(pl.lit("")).fill_null("")
                .alias("resource"),
            ).group_by("source", "region", "day", "resource").len()
            for source, reg, day, resource, n in counted.iter_rows():
                result.usage[(source, reg, day, resource)][0] += n
        else:
            time_col = "start_time" if kind == FLOW else "query_time"
            source = FLOW_LOGS if kind == FLOW else DNS_LOGS
            first, last = span
            if first.date() == last.date():  # the usual object, within one day: no group-by
                result.usage[(source, region, first.date(), "")][0] += frame.height
                return
            for day, n in frame.group_by(pl.col(time_col).dt.date().alias("day")).len().iter_rows():
                result.usage[(source, region, day, "")][0] += n

    @staticmethod
    def _meter_bytes(result: ObjectResult, region: str) -> None:
        """Flow and DNS logs are billed by uncompressed bytes: share the object's bytes over its days."""
        if result.kind == CLOUDTRAIL:
            return
        keys = [k for k in result.usage if k[0] in (FLOW_LOGS, DNS_LOGS)]
        rows = sum(result.usage[k][0] for k in keys)
        remaining = result.stats.bytes_uncompressed
        for i, k in enumerate(keys):
            share = remaining if i == len(keys) - 1 else result.stats.bytes_uncompressed * result.usage[k][0] // max(rows, 1)
            result.usage[k][1] += share
            remaining -= share


def _parsed(kind: str, open_stream: Callable[[], IO[bytes]], stats: ParseStats) -> list[pl.DataFrame]:
    with opened(open_stream) as stream:
        return list(PARSERS[kind](stream, stats))


def _joined(frames: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """One frame with one chunk per column: hundreds of tiny frames' chunks would make every later
    filter walk them all."""
    if len(frames) <= 1:
        return frames
    return [pl.concat(frames, how="diagonal_relaxed").rechunk()]


def iter_local_files(paths: list[str]) -> Iterator[str]:
    """Files under the given files/folders, recursively, in a stable order."""
    import os

    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if not name.startswith("."):
                        yield os.path.join(root, name)
        else:
            yield path


__all__ = ["ObjectInfo", "ObjectResult", "Pipeline", "UnreadableObject", "classify_key", "iter_local_files",
           "scrub_nul", "sniff_kind"]
