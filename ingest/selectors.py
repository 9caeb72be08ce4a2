"""Reads for ingestion: log sources and usage, always scoped to what the acting person may see."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from django.db.models import QuerySet, Sum
from django.utils import timezone

from accounts import access
from ingest.models import LogSource, ProcessedObject, UsageRecord
from ingest.pricing import costs_by_source

DATA_SOURCES = ("CLOUD_TRAIL", "S3_LOGS", "FLOW_LOGS", "DNS_LOGS")


def log_source_list(*, actor: Any, account_id: int | None = None) -> QuerySet[LogSource]:
    sources = LogSource.objects.filter(detector__account__in=access.accounts_visible_to(user=actor))
    if account_id is not None:
        sources = sources.filter(detector__account_id=account_id)
    return sources.select_related("detector__account").order_by("detector__account__aws_account_id",
                                                                  "detector__region", "kind", "bucket")


def failed_object_list(*, actor: Any, source: LogSource, limit: int = 5) -> list[ProcessedObject]:
    if not log_source_list(actor=actor).filter(pk=source.pk).exists():
        return []
    return list(ProcessedObject.objects.filter(source=source, status="failed").order_by("-id")[:limit])


def _usage(actor: Any, *, account_ids: list[int] | None, region: str | None, start: date, end: date) -> QuerySet:
    records = UsageRecord.objects.filter(account__in=access.accounts_visible_to(user=actor), day__gte=start, day__lte=end)
    if account_ids:
        records = records.filter(account_id__in=account_ids)
    if region:
        records = records.filter(region=region)
    return records


def usage_statistics(*, actor: Any, statistic: str, account_ids: list[int] | None = None, region: str | None = None,
                     days: int = 30, today: date | None = None) -> list[dict[str, Any]]:
    """GetUsageStatistics-like totals over the last `days` days: SUM_BY_DATA_SOURCE, SUM_BY_ACCOUNT,
    TOP_RESOURCES (S3 buckets by S3 data events) or SUM_BY_DAY; each row with events, bytes and cost."""
    end = today or timezone.now().date()
    start = end - timedelta(days=days - 1)
    records = _usage(actor, account_ids=account_ids, region=region, start=start, end=end)
    # Cost is tiered per account and Region, so aggregate at that grain first.
    grain = records.values("account_id", "account__aws_account_id", "region", "data_source").annotate(
        events=Sum("events"), bytes=Sum("bytes"))
    cells: dict[tuple[int, str], dict[str, tuple[int, int]]] = defaultdict(dict)
    names: dict[int, str] = {}
    for row in grain:
        cells[(row["account_id"], row["region"])][row["data_source"]] = (row["events"], row["bytes"])
        names[row["account_id"]] = row["account__aws_account_id"]
    totals: dict[str, dict[str, Any]] = {}

    def add(key: str, events: int, size: int, cost: float, **extra: Any) -> None:
        row = totals.setdefault(key, {"key": key, "events": 0, "bytes": 0, "cost": 0.0, **extra})
        row["events"] += events
        row["bytes"] += size
        row["cost"] += cost

    if statistic in ("SUM_BY_DATA_SOURCE", "SUM_BY_ACCOUNT"):
        for (account_id, _region), usage in cells.items():
            costs = costs_by_source(usage)
            for source, (events, size) in usage.items():
                key = source if statistic == "SUM_BY_DATA_SOURCE" else names[account_id]
                add(key, events, size, costs[source])
    elif statistic == "TOP_RESOURCES":
        buckets = records.filter(data_source="S3_LOGS").exclude(resource="").values(
            "account_id", "region", "resource").annotate(events=Sum("events"))
        for row in buckets:
            usage = cells[(row["account_id"], row["region"])]
            s3_total = usage.get("S3_LOGS", (0, 0))[0]
            share = row["events"] / s3_total if s3_total else 0.0
            add(row["resource"], row["events"], 0, costs_by_source(usage).get("S3_LOGS", 0.0) * share)
        return sorted(totals.values(), key=lambda r: -r["cost"])[:50]
    elif statistic == "SUM_BY_DAY":
        for row in records.values("day", "data_source").annotate(events=Sum("events"), bytes=Sum("bytes")):
            add(f"{row['day']}|{row['data_source']}", row["events"], row["bytes"], 0.0, day=row["day"],
                data_source=row["data_source"])
        return sorted(totals.values(), key=lambda r: r["key"])
    else:
        raise ValueError(f"unknown statistic {statistic}")
    return sorted(totals.values(), key=lambda r: (-r["cost"], r["key"]))


def usage_monthly_estimate(*, actor: Any, account_ids: list[int] | None = None, region: str | None = None,
                           days: int = 30, today: date | None = None) -> dict[str, Any]:
    """The console's estimate: the daily average over the days with data, projected to 30 days,
    priced per account and Region (per-account volume discounts included)."""
    end = today or timezone.now().date()
    start = end - timedelta(days=days - 1)
    records = _usage(actor, account_ids=account_ids, region=region, start=start, end=end)
    grain = records.values("account_id", "region", "data_source").annotate(events=Sum("events"), bytes=Sum("bytes"))
    observed = records.values("day").distinct().count()
    scale = 30 / observed if observed else 0.0
    cells: dict[tuple[int, str], dict[str, tuple[int, int]]] = defaultdict(dict)
    for row in grain:
        cells[(row["account_id"], row["region"])][row["data_source"]] = (row["events"], row["bytes"])
    by_source: dict[str, float] = defaultdict(float)
    for usage in cells.values():
        for source, cost in costs_by_source(usage, scale=scale).items():
            by_source[source] += cost
    return {"days_observed": observed, "by_source": dict(by_source), "total": sum(by_source.values())}
