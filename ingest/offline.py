"""Offline analysis of local log files (the `manage.py analyze` command and the demo seed).

Files are classified by their path (AWS's S3 layouts) or content, ordered by event time, and run
through the same pipeline and rules as the workers. Without storing, detections are aggregated in
memory exactly as the database would aggregate them, and serialised in GuardDuty's format.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, Detector
from findings.models import Finding
from findings.serialize import finding_to_sdk
from findings.services import EVIDENCE_SAMPLE_MAX, FindingDraft, filter_columns
from ingest.parsers import UnreadableObject, read_chunks
from ingest.pipeline import ObjectResult, Pipeline, classify_key, iter_local_files, sniff_kind

_NAME_TIME = re.compile(r"_(\d{8}T\d{4})Z?_")
_DIR_DATE = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")
_CONTENT_TIME = re.compile(rb'"(?:eventTime|query_timestamp)"\s*:\s*"([0-9T:\- ]{19})')
_CONTENT_ACCOUNT = re.compile(rb'"(?:recipientAccountId|account_id)"\s*:\s*"(\d{12})"')
_CONTENT_REGION = re.compile(rb'"(?:awsRegion|region)"\s*:\s*"([a-z0-9-]+)"')
UNKNOWN_ACCOUNT = "000000000000"


@dataclass
class LocalFile:
    path: str
    kind: str | None
    aws_account_id: str
    region: str
    sort_time: str
    size: int = 0
    error: str = ""


def _head(path: str, size: int = 65536) -> bytes:
    with open(path, "rb") as fh:
        try:
            return next(read_chunks(fh, size), b"")
        except UnreadableObject:
            return b""


def describe_file(path: str) -> LocalFile:
    import os

    info = classify_key(path.replace("\\", "/"))
    head = _head(path)
    kind = info.kind or sniff_kind(head)
    account = info.aws_account_id
    region = info.region
    if not account:
        match = _CONTENT_ACCOUNT.search(head)
        if match:
            account = match.group(1).decode()
        elif kind == "flow":
            lines = head.split(b"\n")
            fields = lines[1].split() if len(lines) > 1 else []
            account = fields[1].decode() if len(fields) > 1 and fields[1].isdigit() else None
    if not region:
        match = _CONTENT_REGION.search(head)
        region = match.group(1).decode() if match else None
    sort_time = ""
    match = _NAME_TIME.search(path.rsplit("/", 1)[-1])
    if match:
        sort_time = datetime.strptime(match.group(1), "%Y%m%dT%H%M").strftime("%Y-%m-%dT%H:%M:%S")
    else:
        match = _CONTENT_TIME.search(head)
        if match:
            sort_time = match.group(1).decode().replace(" ", "T")
        else:
            day = _DIR_DATE.search(path)
            if day:
                sort_time = "-".join(day.groups()) + "T00:00:00"
    return LocalFile(path, kind, account or UNKNOWN_ACCOUNT, region or "us-east-1", sort_time or "9999",
                     size=os.path.getsize(path))


@dataclass
class OfflineRun:
    files: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    records: int = 0
    malformed: int = 0
    findings: list[Finding] = field(default_factory=list)


def _detector_id(account: str, region: str) -> str:
    return hashlib.md5(f"{account}/{region}".encode(), usedforsecurity=False).hexdigest()


class _MemoryFindings:
    """Aggregates detections into unsaved Finding objects with the database's semantics."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str], Finding] = {}
        self.accounts: dict[str, Account] = {}
        self.now = timezone.now()

    def add(self, aws_account_id: str, result: ObjectResult) -> None:
        account = self.accounts.setdefault(aws_account_id, Account(aws_account_id=aws_account_id, name=aws_account_id))
        for d in result.detections:
            draft = FindingDraft(account_id=0, region=d.region or "", type=d.type, severity=d.resolved_severity(),
                                 dedup_key=d.dedup_key, title=d.title, first_seen=_aware(d.first_seen),
                                 last_seen=_aware(d.last_seen))
            key = (aws_account_id, draft.fingerprint)
            finding = self.by_key.get(key)
            evidence = _jsonable(d.evidence)
            if finding is None:
                detector = Detector(account=account, region=draft.region, detector_id=_detector_id(aws_account_id, draft.region))
                finding = Finding(account=account, detector=detector, region=draft.region, type=d.type,
                                  severity=draft.severity, severity_level=int(draft.severity), title=d.title,
                                  description=d.description, resource_type=d.resource.get("resourceType", ""),
                                  resource=d.resource, service=d.service, evidence_events=evidence[:EVIDENCE_SAMPLE_MAX],
                                  fingerprint=draft.fingerprint, count=d.count, first_seen=draft.first_seen,
                                  last_seen=draft.last_seen, created_at=self.now, updated_at=self.now,
                                  finding_id=hashlib.sha256(f"{aws_account_id}/{draft.fingerprint}".encode()).hexdigest()[:32],
                                  **filter_columns(d.resource, d.service))
                self.by_key[key] = finding
                continue
            finding.count += d.count
            finding.severity = max(finding.severity, draft.severity)
            finding.severity_level = int(finding.severity)
            finding.first_seen = min(finding.first_seen, draft.first_seen)
            if draft.last_seen >= finding.last_seen:
                finding.last_seen = draft.last_seen
                finding.title, finding.description = d.title, d.description
                finding.resource, finding.service = d.resource, d.service
                for name, value in filter_columns(d.resource, d.service).items():
                    setattr(finding, name, value)
            finding.evidence_events = (finding.evidence_events + evidence)[:EVIDENCE_SAMPLE_MAX]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _jsonable(rows: Iterable[Any]) -> list[Any]:
    from ingest.services import _jsonable as convert

    return convert(list(rows))


def analyze_paths(paths: list[str], *, matcher: Any, store: bool = False,
                  progress: Callable[[int, int, LocalFile, OfflineRun], None] | None = None) -> OfflineRun:
    """Analyse local files; with `store`, write findings and usage into the database (creating the
    accounts and detectors the logs name). Small files of one account, type and region that follow
    each other in time are analysed together, as workers batch small objects."""
    files = [describe_file(p) for p in iter_local_files(paths)]
    files.sort(key=lambda f: (f.sort_time, f.path))
    run = _Run(matcher=matcher, store=store)
    done = 0
    for group in _groups(files):
        if group[0].kind is None:
            run.skipped.append((group[0].path, "not a CloudTrail, VPC flow or Resolver query log"))
        elif len(group) == 1 or not run.analyse_together(group):
            for local in group:
                run.analyse_alone(local)
        for local in group:
            done += 1
            if progress:
                progress(done, len(files), local, run)
    return run.finish()


def _groups(files: list[LocalFile]) -> list[list[LocalFile]]:
    """Files in order, in the workers' batches (ingest.services.refs_batched) within each run of
    consecutive files of one (type, account, region) and size class: a large file never overtakes
    the small ones before it."""
    from ingest.services import BATCH_OBJECT_BYTES, refs_batched

    out: list[list[LocalFile]] = []
    runs = itertools.groupby(files, key=lambda f: (f.kind, f.aws_account_id, f.region, 0 < f.size <= BATCH_OBJECT_BYTES))
    for (kind, *_), run in runs:
        out += [[local] for local in run] if kind is None else refs_batched(list(run), kind)
    return out


class _Run(OfflineRun):
    """One analysis: a pipeline per account (learning across its files), findings in memory or stored."""

    def __init__(self, *, matcher: Any, store: bool) -> None:
        super().__init__()
        self.matcher, self.store = matcher, store
        self.pipelines: dict[str, Pipeline] = {}
        self.memory = _MemoryFindings()
        self.stored: set[int] = set()

    def pipeline(self, local: LocalFile) -> Pipeline:
        if local.aws_account_id not in self.pipelines:
            kwargs: dict[str, Any] = {}
            if self.store:
                # Stored runs learn baselines into the database (merging with what workers learned),
                # so the account must exist before its first file is analysed.
                from ingest.services import anomaly_stage_for_workers

                Account.objects.get_or_create(aws_account_id=local.aws_account_id,
                                              defaults={"name": f"Imported {local.aws_account_id}"})
                kwargs["anomaly"] = anomaly_stage_for_workers()
            self.pipelines[local.aws_account_id] = Pipeline(matcher=self.matcher, **kwargs)
        return self.pipelines[local.aws_account_id]

    def analyse_alone(self, local: LocalFile) -> None:
        try:
            with open(local.path, "rb") as fh:
                result = self.pipeline(local).process(local.kind, io.BufferedReader(fh),
                                                      aws_account_id=local.aws_account_id, region=local.region)
        except UnreadableObject as exc:
            self.skipped.append((local.path, exc.reason))
            return
        self.files += 1
        self.keep(local, result)

    def analyse_together(self, group: list[LocalFile]) -> bool:
        """The group in one pipeline pass; False when a file is unreadable (the pipeline parses every
        file before analysing any, so nothing was learned: each file then goes alone)."""
        first = group[0]
        try:
            result, _ = self.pipeline(first).process_many(
                first.kind, [(local.path, lambda path=local.path: open(path, "rb")) for local in group],
                aws_account_id=first.aws_account_id, region=first.region)
        except UnreadableObject:
            return False
        self.files += len(group)
        self.keep(first, result)
        return True

    def keep(self, local: LocalFile, result: ObjectResult) -> None:
        from ingest.services import inventory_save, result_store

        self.records += result.stats.records
        self.malformed += result.stats.malformed
        if not self.store:
            self.memory.add(local.aws_account_id, result)
            return
        with transaction.atomic():
            account, _ = Account.objects.get_or_create(
                aws_account_id=local.aws_account_id, defaults={"name": f"Imported {local.aws_account_id}"})
            detector, _ = Detector.objects.get_or_create(account=account, region=local.region)
            upserted = result_store(result=result, account=account, default_detector=detector, create_detectors=True)
            inventory_save(inventory=self.pipeline(local).inventory, account_id=account.id, region=local.region)
            self.stored.update(upserted.created + upserted.updated)

    def finish(self) -> OfflineRun:
        if self.store:
            self.findings = list(Finding.objects.filter(pk__in=self.stored).select_related("account", "detector")
                                 .order_by("first_seen", "id"))
        else:
            self.findings = sorted(self.memory.by_key.values(), key=lambda f: (f.first_seen, f.type))
        return self


def findings_document(findings: list[Finding]) -> dict[str, Any]:
    """GuardDuty's GetFindings response body in boto3's PascalCase shape."""
    return {"Findings": [finding_to_sdk(f) for f in findings]}
