"""Reads of learned baselines, always scoped to the accounts the person may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from django.db.models import Q, QuerySet

from accounts import access
from accounts.models import Account
from console.errors import NotFoundError
from ingest.anomaly.config import AnomalyConfig, config_from_settings
from ingest.anomaly.models import Baseline
from ingest.anomaly.state import Profile, frequency_tag


def baseline_list(*, actor: Any, account: Account, kind: str | None = None, query: str = "") -> QuerySet[Baseline]:
    """The principals and instances learned in `account` (404 unless the person may see it);
    `query` matches the ARN/key or the name."""
    if not access.accounts_visible_to(user=actor).filter(pk=account.pk).exists():
        raise NotFoundError("No such account.")
    rows = Baseline.objects.filter(account=account).exclude(kind=Baseline.Kind.ACCOUNT)
    if kind:
        rows = rows.filter(kind=kind)
    if query:
        rows = rows.filter(Q(key__icontains=query) | Q(label__icontains=query))
    return rows.defer("state").order_by("kind", "-last_seen", "key")


def baseline_get(*, actor: Any, pk: int) -> Baseline:
    """A principal's (or instance's) baseline in an account the person may see; 404 otherwise."""
    row = (Baseline.objects.filter(pk=pk, account__in=access.accounts_visible_to(user=actor))
           .exclude(kind=Baseline.Kind.ACCOUNT).select_related("account").first())
    if row is None:
        raise NotFoundError("No such baseline.")
    return row


@dataclass
class Learned:
    """What a baseline says, laid out for the page: each feature's values with their share of hours."""

    row: Baseline
    profile: Profile
    account_profile: Profile
    config: AnomalyConfig

    def values(self, feature: str, limit: int = 10, *, of_account: bool = False) -> list[dict[str, Any]]:
        profile = self.account_profile if of_account else self.profile
        hours = profile.hours or 0.0
        out = []
        for value, count in profile.top(feature, limit):
            share = count / hours if hours else 0.0
            out.append({"value": value, "hours": round(count, 1), "share": round(min(share, 1.0), 3),
                        "percent": round(100 * min(share, 1.0)), "frequency": frequency_tag(count, hours)})
        return out

    @cached_property
    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Each learned feature's top values (APIs: top 20), and the account's regions and ASNs."""
        out = {f: self.values(f, 20 if f == "api" else 10) for f in
               ("region", "category", "api", "bucket", "network", "asn", "ua", "error", "port", "peer", "protocol")}
        out["account_region"] = self.values("region", of_account=True)
        out["account_asn"] = self.values("asn", of_account=True)
        return out

    @property
    def hours_of_day(self) -> list[dict[str, Any]]:
        counts = self.profile.counts.get("hour", {})
        top = max(counts.values(), default=0.0) or 1.0
        return [{"hour": h, "hours": round(counts.get(str(h), 0.0), 1), "share": round(counts.get(str(h), 0.0) / top, 3)}
                for h in range(24)]

    @property
    def learning_until(self) -> datetime | None:
        if not self.profile.first_seen:
            return None
        return datetime.fromtimestamp(self.profile.first_seen + self.config.learning_seconds, tz=UTC)

    @property
    def is_learning(self) -> bool:
        until = self.learning_until
        return until is None or until > datetime.fromtimestamp(max(self.profile.pending_hour, self.profile.last_update),
                                                               tz=UTC)

    @property
    def volume(self) -> dict[str, Any] | None:
        stats = self.profile.volume_stats.get("_bytes")
        if stats is None:
            return None
        import math

        return {"typical": round(math.expm1(stats.mean)), "max": round(self.profile.volume_max.get("_bytes", 0.0)),
                "host_hours": round(stats.weight, 1)}


def baseline_learned(*, actor: Any, pk: int) -> Learned:
    row = baseline_get(actor=actor, pk=pk)
    # An S3 baseline backs off to the account's S3 profile (ingest.anomaly.s3.account_key).
    account_key = f"s3:{row.account.aws_account_id}" if row.kind == Baseline.Kind.S3 else row.account.aws_account_id
    account_row = Baseline.objects.filter(account=row.account, kind=Baseline.Kind.ACCOUNT, key=account_key).first()
    return Learned(row, Profile.from_json(row.state), Profile.from_json(account_row.state if account_row else None),
                   config_from_settings())
