"""Writes for findings: aggregate detections into GuardDuty findings, record what to publish.

`findings_upsert_many` is the one write path of the detection pipeline. It merges a batch of
drafts in a single `INSERT … ON CONFLICT (account, fingerprint) DO UPDATE` statement per chunk, so
concurrent workers that hit the same finding serialise on the row inside the database instead of
racing in Python (count adds up, first/last seen widen, severity keeps the maximum, the details of
the latest occurrence replace the old ones, the evidence sample stays bounded).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.db import execute_bulk
from console.errors import ServiceError
from findings.catalog import FINDING_TYPES
from findings.models import Finding, FindingPublication, new_finding_id

EVIDENCE_SAMPLE_MAX = getattr(settings, "VIGIL_FINDING_EVIDENCE_MAX", 10)
_CHUNK = 500


@dataclass(slots=True)
class FindingDraft:
    """One detection, before aggregation. `dedup_key` names the resource and actor: drafts with the
    same account, region, type and key aggregate into one finding."""

    account_id: int
    region: str
    type: str
    severity: float
    dedup_key: str
    title: str
    first_seen: datetime
    last_seen: datetime
    description: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    service: dict[str, Any] = field(default_factory=dict)
    count: int = 1
    detector_id: int | None = None
    evidence_events: list[Any] = field(default_factory=list)
    is_sample: bool = False
    partition: str = "aws"

    @property
    def fingerprint(self) -> str:
        return finding_fingerprint(region=self.region, finding_type=self.type, dedup_key=self.dedup_key)


@dataclass
class UpsertResult:
    created: list[int] = field(default_factory=list)  # Finding pks
    updated: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.created) + len(self.updated)


# Hooks deciding whether a new finding is suppressed (stored archived, never published). The
# suppression-rules issue registers its evaluator here: fn(drafts) -> list[bool].
SUPPRESSION_HOOKS: list[Callable[[Sequence[FindingDraft]], list[bool]]] = []


def finding_fingerprint(*, region: str, finding_type: str, dedup_key: str) -> str:
    return hashlib.sha256(f"{region}\x1f{finding_type}\x1f{dedup_key}".encode()).hexdigest()


def _dig(data: Any, *path: str | int) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or len(data) <= part:
                return None
            data = data[part]
        else:
            if not isinstance(data, dict):
                return None
            data = data.get(part)
    return data


def _remote_ip(action: dict[str, Any]) -> str:
    for path in (
        ("networkConnectionAction", "remoteIpDetails"),
        ("awsApiCallAction", "remoteIpDetails"),
        ("portProbeAction", "portProbeDetails", 0, "remoteIpDetails"),
    ):
        details = _dig(action, *path) or {}
        ip = details.get("ipAddressV4") or details.get("ipAddressV6")
        if ip:
            return str(ip)
    return ""


def filter_columns(resource: dict[str, Any], service: dict[str, Any]) -> dict[str, str]:
    """The denormalised filter columns of a finding, derived from its GuardDuty documents."""
    action = service.get("action") or {}
    info = service.get("additionalInfo") or {}
    instance_id = _dig(resource, "instanceDetails", "instanceId") or ""
    access_key_id = _dig(resource, "accessKeyDetails", "accessKeyId") or ""
    bucket = _dig(resource, "s3BucketDetails", 0, "name") or ""
    threat_list = info.get("threatListName") or _dig(service, "evidence", "threatIntelligenceDetails", 0, "threatListName") or ""
    return {
        "action_type": str(action.get("actionType") or "")[:32],
        "resource_role": str(service.get("resourceRole") or "")[:8],
        # The resource the finding is about: an S3 finding names its bucket even when the caller's key is known.
        "resource_id": str((bucket if resource.get("resourceType") == "S3Bucket" else "") or instance_id
                           or access_key_id or bucket or _dig(resource, "accessKeyDetails", "userName") or "")[:256],
        "instance_id": str(instance_id)[:32],
        "access_key_id": str(access_key_id)[:128],
        "principal_id": str(_dig(resource, "accessKeyDetails", "principalId") or "")[:256],
        "user_name": str(_dig(resource, "accessKeyDetails", "userName") or "")[:256],
        "bucket_name": str(bucket)[:63],
        "remote_ip": _remote_ip(action)[:45],
        "domain": str(_dig(action, "dnsRequestAction", "domain") or "")[:255],
        "api": str(_dig(action, "awsApiCallAction", "api") or "")[:128],
        "threat_list_name": str(threat_list)[:300],
    }


_COLUMNS = [
    "finding_id", "account_id", "detector_id", "partition", "region", "type", "severity", "severity_level", "title",
    "description", "resource_type", "resource", "service", "evidence_events", "fingerprint", "count", "first_seen",
    "last_seen", "created_at", "updated_at", "archived", "suppressed", "feedback", "is_sample", "action_type", "resource_role",
    "resource_id", "instance_id", "access_key_id", "principal_id", "user_name", "bucket_name", "remote_ip", "domain",
    "api", "threat_list_name",
]
_JSON_COLUMNS = {"resource", "service", "evidence_events"}
# Replaced by the latest occurrence (GuardDuty: "action and actor details are replaced").
_LATEST_COLUMNS = [
    "title", "description", "resource", "service", "detector_id", "action_type", "resource_role", "resource_id",
    "instance_id", "access_key_id", "principal_id", "user_name", "bucket_name", "remote_ip", "domain", "api",
    "threat_list_name",
]


@lru_cache(maxsize=8)
def _upsert_sql(rows: int) -> str:
    # Only identifiers and integer constants are formatted in; every value is a %s parameter.
    table = Finding._meta.db_table
    postgres = connection.vendor == "postgresql"
    greatest, least = ("GREATEST", "LEAST") if postgres else ("MAX", "MIN")
    placeholders = ", ".join("CAST(%s AS jsonb)" if postgres and c in _JSON_COLUMNS else "%s" for c in _COLUMNS)
    values = ", ".join(f"({placeholders})" for _ in range(rows))
    n = EVIDENCE_SAMPLE_MAX
    if postgres:
        evidence = (
            f"CASE WHEN jsonb_array_length({table}.evidence_events) >= {n} THEN {table}.evidence_events ELSE "  # noqa: S608
            f"(SELECT COALESCE(jsonb_agg(e ORDER BY i), '[]'::jsonb) FROM (SELECT e, i FROM jsonb_array_elements("
            f"{table}.evidence_events || excluded.evidence_events) WITH ORDINALITY AS t(e, i) ORDER BY i LIMIT {n}) s) END"
        )
    else:
        evidence = (
            f"CASE WHEN json_array_length({table}.evidence_events) >= {n} THEN {table}.evidence_events ELSE "  # noqa: S608
            f"(SELECT json_group_array(json(value)) FROM (SELECT value FROM json_each({table}.evidence_events) "
            f"UNION ALL SELECT value FROM json_each(excluded.evidence_events) LIMIT {n})) END"
        )
    latest = ", ".join(
        f"{c} = CASE WHEN excluded.last_seen >= {table}.last_seen THEN excluded.{c} ELSE {table}.{c} END"
        for c in _LATEST_COLUMNS
    )
    return (
        f"INSERT INTO {table} ({', '.join(_COLUMNS)}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT (account_id, fingerprint) DO UPDATE SET "
        f"count = {table}.count + excluded.count, "
        f"first_seen = {least}({table}.first_seen, excluded.first_seen), "
        f"last_seen = {greatest}({table}.last_seen, excluded.last_seen), "
        f"updated_at = excluded.updated_at, "
        f"severity = {greatest}({table}.severity, excluded.severity), "
        f"severity_level = {greatest}({table}.severity_level, excluded.severity_level), "
        f"{latest}, evidence_events = {evidence} "
        f"RETURNING id, account_id, fingerprint, finding_id, suppressed"
    )


def _merge_drafts(drafts: Iterable[FindingDraft]) -> dict[tuple[int, str], FindingDraft]:
    """Fold drafts of the same finding within one batch (one statement cannot touch a row twice)."""
    merged: dict[tuple[int, str], FindingDraft] = {}
    for draft in drafts:
        if draft.type not in FINDING_TYPES:
            raise ServiceError(f"Unknown finding type {draft.type!r}.")
        if not 1.0 <= draft.severity <= 10.0:
            raise ServiceError(f"Severity must be between 1.0 and 10.0 (got {draft.severity}).")
        key = (draft.account_id, draft.fingerprint)
        seen = merged.get(key)
        if seen is None:
            merged[key] = replace(draft, evidence_events=list(draft.evidence_events[:EVIDENCE_SAMPLE_MAX]))
            continue
        latest = draft if draft.last_seen >= seen.last_seen else seen
        merged[key] = FindingDraft(
            account_id=seen.account_id, region=seen.region, type=seen.type,
            severity=max(seen.severity, draft.severity), dedup_key=seen.dedup_key, title=latest.title,
            description=latest.description, resource=latest.resource, service=latest.service,
            first_seen=min(seen.first_seen, draft.first_seen), last_seen=max(seen.last_seen, draft.last_seen),
            count=seen.count + draft.count, detector_id=latest.detector_id,
            evidence_events=(seen.evidence_events + list(draft.evidence_events))[:EVIDENCE_SAMPLE_MAX],
            is_sample=seen.is_sample, partition=seen.partition,
        )
    return merged


def _row(draft: FindingDraft, *, now: datetime, archived: bool) -> list[Any]:
    ops = connection.ops
    finding_type = FINDING_TYPES[draft.type]
    columns = filter_columns(draft.resource, draft.service)
    values = {
        "finding_id": new_finding_id(),
        "account_id": draft.account_id,
        "detector_id": draft.detector_id,
        "partition": draft.partition,
        "region": draft.region,
        "type": draft.type,
        "severity": float(draft.severity),
        "severity_level": max(1, min(10, math.floor(draft.severity))),
        "title": draft.title[:500],
        "description": draft.description,
        "resource_type": draft.resource.get("resourceType") or finding_type.resource_type,
        "resource": json.dumps(draft.resource, default=str),
        "service": json.dumps(draft.service, default=str),
        "evidence_events": json.dumps(draft.evidence_events[:EVIDENCE_SAMPLE_MAX], default=str),
        "fingerprint": draft.fingerprint,
        "count": draft.count,
        "first_seen": ops.adapt_datetimefield_value(draft.first_seen),
        "last_seen": ops.adapt_datetimefield_value(draft.last_seen),
        "created_at": ops.adapt_datetimefield_value(now),
        "updated_at": ops.adapt_datetimefield_value(now),
        "archived": archived,
        "suppressed": archived,  # only a suppression rule archives a finding as it is created
        "feedback": "",
        "is_sample": draft.is_sample,
        **columns,
    }
    return [values[c] for c in _COLUMNS]


@transaction.atomic
def findings_upsert_many(*, drafts: Iterable[FindingDraft], now: datetime | None = None) -> UpsertResult:
    """Aggregate a batch of detections into findings; record new and updated ones for publishing.

    System write (the detection pipeline), so no actor: callers are tasks and commands that already
    decided which account the logs belong to.
    """
    now = now or timezone.now()
    # In key order: two transactions upserting overlapping findings lock their rows in the same
    # order, so they queue behind each other instead of deadlocking.
    merged = [d for _, d in sorted(_merge_drafts(drafts).items())]
    result = UpsertResult()
    if not merged:
        return result
    suppressed = [False] * len(merged)
    for hook in SUPPRESSION_HOOKS:
        suppressed = [a or bool(b) for a, b in zip(suppressed, hook(merged), strict=True)]
    publications: list[tuple[int, str]] = []
    for start in range(0, len(merged), _CHUNK):
        chunk = merged[start:start + _CHUNK]
        rows = [_row(d, now=now, archived=suppressed[start + i]) for i, d in enumerate(chunk)]
        proposed = {(d.account_id, d.fingerprint): row[0] for d, row in zip(chunk, rows, strict=True)}
        returned = execute_bulk(_upsert_sql(len(rows)), [v for row in rows for v in row])
        for pk, account_id, fingerprint, finding_id, suppressed_row in returned:
            created = proposed.get((account_id, fingerprint)) == finding_id
            (result.created if created else result.updated).append(pk)
            # GuardDuty: a suppressed finding and its later occurrences are never published; one
            # an analyst archived by hand still has its occurrences published (event destinations;
            # the S3 export skips every archived finding).
            if not suppressed_row:
                kind = FindingPublication.Kind.NEW if created else FindingPublication.Kind.UPDATED
                publications.append((pk, kind))
    _publications_pending(publications)
    return result


def _publications_pending(publications: list[tuple[int, str]]) -> None:
    """Record (finding, kind) pairs to publish, created now (the clock, not the caller's `now`: an
    update waits the detector's publishing frequency from its created_at). One pending row per
    finding and kind (the partial unique constraint): a finding updated many times before
    publishing is sent once."""
    if not publications:
        return
    if connection.vendor != "postgresql":
        FindingPublication.objects.bulk_create(
            [FindingPublication(finding_id=pk, kind=kind) for pk, kind in publications], ignore_conflicts=True)
        return
    # A flow object's batch upserts hundreds of findings: two arrays, not a model instance and a
    # VALUES tuple per row (Django's bulk_create cost ~0.2 ms a row here).
    table = FindingPublication._meta.db_table
    execute_bulk(f"INSERT INTO {table} (finding_id, kind, created_at) "  # noqa: S608
                 "SELECT f, k, %s FROM unnest(%s::bigint[], %s::varchar[]) AS u(f, k) ON CONFLICT DO NOTHING",
                 [timezone.now(), [pk for pk, _ in publications], [kind for _, kind in publications]])


def finding_upsert(
    *,
    account_id: int,
    region: str,
    finding_type: str,
    dedup_key: str,
    severity: float | None = None,
    title: str,
    first_seen: datetime,
    last_seen: datetime | None = None,
    detector_id: int | None = None,
    description: str = "",
    resource: dict[str, Any] | None = None,
    service: dict[str, Any] | None = None,
    count: int = 1,
    evidence_events: list[Any] | None = None,
    is_sample: bool = False,
) -> Finding:
    """Upsert one finding (see findings_upsert_many) and return it."""
    if finding_type not in FINDING_TYPES:
        raise ServiceError(f"Unknown finding type {finding_type!r}.")
    draft = FindingDraft(
        account_id=account_id, region=region, type=finding_type,
        severity=FINDING_TYPES[finding_type].severity if severity is None else severity,
        dedup_key=dedup_key, title=title, description=description or FINDING_TYPES[finding_type].description,
        resource=resource or {}, service=service or {}, first_seen=first_seen, last_seen=last_seen or first_seen,
        count=count, detector_id=detector_id, evidence_events=evidence_events or [], is_sample=is_sample,
    )
    result = findings_upsert_many(drafts=[draft])
    return Finding.objects.get(pk=(result.created or result.updated)[0])
