"""Baselines in the database: load a batch's rows locked, learn in memory, write back in bulk.

No ORM call per event: one INSERT … ON CONFLICT DO NOTHING for profiles never seen, one
SELECT … FOR UPDATE for all the rows a frame touches (in primary-key order, so two workers lock
in the same order and cannot deadlock), one bulk upsert of the changed rows. The caller's
transaction (the ingest object's) holds the locks until its findings are stored; a second worker
touching the same principal waits, then reads the state the first one wrote: nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import polars as pl
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from console.db import upsert
from ingest.anomaly.config import AnomalyConfig, config_from_settings
from ingest.anomaly.detect import AnomalyFinding
from ingest.anomaly.models import Baseline
from ingest.anomaly.stage import MemoryAnomalyStage, subjects, to_detection
from ingest.anomaly.state import Baselines, Profile

Ident = tuple[str, str, str]  # (aws account id, kind, key)


def _ts(epoch: int) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch else None


def baselines_lock(*, idents: Iterable[Ident]) -> tuple[Baselines, dict[Ident, Baseline]]:
    """Create missing rows, lock every row of `idents`, and return them as Baselines (must run
    inside a transaction). Accounts Vigil does not know are skipped."""
    wanted = set(idents)
    if not wanted:
        return Baselines(), {}
    accounts = dict(Account.objects.filter(aws_account_id__in={a for a, _, _ in wanted})
                    .values_list("aws_account_id", "id"))
    wanted = {i for i in wanted if i[0] in accounts}
    Baseline.objects.bulk_create(
        [Baseline(account_id=accounts[a], kind=kind, key=key[:1024]) for a, kind, key in sorted(wanted)],
        ignore_conflicts=True,
    )
    by_pk = {pk: aws for aws, pk in accounts.items()}
    rows = (Baseline.objects.select_for_update()
            .filter(account_id__in=accounts.values(), kind__in={k for _, k, _ in wanted},
                    key__in={key[:1024] for _, _, key in wanted})
            .order_by("pk"))
    loaded: dict[Ident, Baseline] = {}
    profiles: dict[Ident, Profile] = {}
    for row in rows:
        ident = (by_pk[row.account_id], row.kind, row.key)
        if ident in wanted:
            loaded[ident] = row
            profiles[ident] = Profile.from_json(row.state)
    return Baselines(profiles), loaded


_SAVED = ("state", "first_seen", "last_seen", "active_hours", "principal_type", "label", "updated_at")


def baselines_save(*, baselines: Baselines, rows: dict[Ident, Baseline]) -> int:
    """Write back the profiles that changed (one bulk upsert)."""
    changed = []
    now = timezone.now()  # one timestamp for the whole write
    for ident, profile in baselines.dirty().items():
        row = rows.get(ident)
        if row is None:
            continue
        row.state = profile.to_json()
        row.first_seen = _ts(profile.first_seen)
        row.last_seen = _ts(max(profile.pending_hour, profile.last_update))
        row.active_hours = round(profile.hours + (1 if profile.pending else 0), 3)
        row.principal_type = str(profile.info.get("type", ""))[:32]
        row.label = str(profile.info.get("userName") or profile.info.get("arn") or ident[2])[:256]
        row.updated_at = now
        profile.dirty = False
        changed.append(row)
    # The rows exist and are locked: an upsert on the unique key writes them in one INSERT … ON
    # CONFLICT DO UPDATE. bulk_update's CASE WHEN expression per row and field cost more than the
    # whole anomaly model (Django resolves each When in Python).
    if changed:
        upsert(Baseline, [Baseline(account_id=row.account_id, kind=row.kind, key=row.key, state=row.state,
                                   first_seen=row.first_seen, last_seen=row.last_seen, active_hours=row.active_hours,
                                   principal_type=row.principal_type, label=row.label, updated_at=now)
                          for row in changed],
               conflict=["account", "kind", "key"],
               update=", ".join(f"{{{name}}} = EXCLUDED.{{{name}}}" for name in _SAVED))
    return len(changed)


class DatabaseAnomalyStage(MemoryAnomalyStage):
    """The pipeline's anomaly step for workers: state in PostgreSQL, rows locked per frame."""

    def detect(self, kind: str, frame: pl.DataFrame, *, aws_account_id: str, region: str,
               inventory: Any = None, oriented: pl.DataFrame | None = None) -> list[Any]:
        findings = anomalies_process(kind=kind, frame=frame, aws_account_id=aws_account_id, region=region,
                                     inventory=inventory, stage=self, oriented=oriented)
        return [to_detection(f) for f in findings]


@transaction.atomic
def anomalies_process(*, kind: str, frame: pl.DataFrame, aws_account_id: str, region: str = "",
                      inventory: Any = None, config: AnomalyConfig | None = None,
                      stage: MemoryAnomalyStage | None = None,
                      oriented: pl.DataFrame | None = None) -> list[AnomalyFinding]:
    """Score and learn one CloudTrail or flow frame against the stored baselines (`oriented`: a
    flow frame's `orient()`, when the caller has it)."""
    stage = stage or MemoryAnomalyStage(config=config or config_from_settings())
    if frame.is_empty():
        return []
    prepared = stage.prepare(kind, frame, aws_account_id=aws_account_id, inventory=inventory, oriented=oriented)
    idents = subjects(kind, prepared)
    if not idents:
        return []
    baselines, rows = baselines_lock(idents=idents)
    known = {a for a, _, _ in rows}
    prepared = prepared.filter(pl.col("account_id").is_in(list(known)))
    if prepared.is_empty():
        return []
    findings = stage.run(kind, prepared, baselines, region=region, inventory=inventory)
    baselines_save(baselines=baselines, rows=rows)
    return findings
