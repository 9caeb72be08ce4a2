"""The findings page's query: URL parameters -> FindingCriteria -> scoped, keyset-paginated rows.

Filters are expressed as GuardDuty FindingCriteria and compiled by findings.criteria (the same
engine as the API and suppression rules). Pagination is keyset ("seek"): the cursor carries the
sort value and the primary key of the last row shown, so page 1000 costs what page 1 costs.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts import access
from console.errors import NotFoundError, ServiceError
from findings.catalog import severity_label
from findings.criteria import CriteriaError, criteria_q
from findings.models import Finding

# Page column -> model field (the tie-breaker is always the primary key, in the same direction).
SORTS: dict[str, str] = {
    "severity": "severity",
    "type": "type",
    "resource": "resource_id",
    "account": "account__aws_account_id",
    "region": "region",
    "count": "count",
    "last_seen": "last_seen",
    "first_seen": "first_seen",
    "updated": "updated_at",
}
DEFAULT_SORT = "last_seen"
PAGE_SIZE = 50

# URL parameter -> FindingCriteria attribute (Equals; several values of one parameter are ORed).
EQUALS_PARAMS: dict[str, str] = {
    "type": "type",
    "resource_type": "resource.resourceType",
    "instance_id": "resource.instanceDetails.instanceId",
    "access_key_id": "resource.accessKeyDetails.accessKeyId",
    "bucket": "resource.s3BucketDetails.name",
    "account": "accountId",
    "region": "region",
    "ip": "service.action.networkConnectionAction.remoteIpDetails.ipAddressV4",
    "threat_list": "service.additionalInfo.threatListName",
}
TIME_PARAMS: dict[str, tuple[str, str]] = {
    "updated_after": ("updatedAt", "GreaterThanOrEqual"),
    "updated_before": ("updatedAt", "LessThan"),
    "created_after": ("createdAt", "GreaterThanOrEqual"),
    "created_before": ("createdAt", "LessThan"),
}
STATUSES = ("current", "archived", "all")
FILTER_PARAMS = (*EQUALS_PARAMS, *TIME_PARAMS, "sev_min", "sev_max", "status")


def _epoch_ms(text: str, param: str) -> int:
    value = parse_datetime(text)
    if value is None:
        day = parse_date(text)
        if day is None:
            raise CriteriaError(f"{param}: {text!r} is not a date or date-time (YYYY-MM-DD[THH:MM]).")
        value = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(value):
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def params_to_criteria(params: Mapping[str, Any]) -> dict[str, Any]:
    """The page's URL parameters as GuardDuty FindingCriteria (the form a saved filter stores)."""
    getlist = params.getlist if hasattr(params, "getlist") else (lambda k: [params[k]] if k in params else [])
    criterion: dict[str, dict[str, Any]] = {}
    for param, attribute in EQUALS_PARAMS.items():
        values = [v.strip() for raw in getlist(param) for v in str(raw).split(",") if v.strip()]
        if values:
            criterion[attribute] = {"Equals": values}
    severity: dict[str, Any] = {}
    for param, operator in (("sev_min", "GreaterThanOrEqual"), ("sev_max", "LessThanOrEqual")):
        raw = (params.get(param) or "").strip()
        if raw:
            try:
                value = float(raw)
            except ValueError as exc:
                raise CriteriaError(f"{param}: {raw!r} is not a number.") from exc
            if not 0 <= value <= 10:
                raise CriteriaError(f"{param} must be between 0 and 10.")
            severity[operator] = value
    if severity:
        criterion["severity"] = severity
    for param, (attribute, operator) in TIME_PARAMS.items():
        raw = (params.get(param) or "").strip()
        if raw:
            criterion.setdefault(attribute, {})[operator] = _epoch_ms(raw, param)
    status = params.get("status") or "current"
    if status not in STATUSES:
        raise CriteriaError(f"status must be one of {', '.join(STATUSES)}.")
    if status != "all":
        criterion["service.archived"] = {"Equals": ["true" if status == "archived" else "false"]}
    return {"Criterion": criterion}


def scoped(*, actor: Any) -> QuerySet[Finding]:
    """Findings of every account the person may see (administrators: their members' too)."""
    return Finding.objects.filter(account__in=access.accounts_visible_to(user=actor))


def findings_by_ids(*, actor: Any, finding_ids: Any, limit: int = 1000) -> list[Finding]:
    """The visible findings with these ids; all or nothing (an unknown id is "not found")."""
    ids = list(dict.fromkeys(str(i) for i in finding_ids or []))
    if not ids:
        raise ServiceError("Select at least one finding.")
    if len(ids) > limit:
        raise ServiceError(f"At most {limit} findings at a time.")
    found = list(scoped(actor=actor).filter(finding_id__in=ids).select_related("account"))
    if len(found) != len(ids):
        raise NotFoundError("No such finding.")
    return found


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(token: str) -> list[Any]:
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise CriteriaError("The page cursor is not valid.") from exc
    if not isinstance(values, list) or len(values) != 3:
        raise CriteriaError("The page cursor is not valid.")
    return values


def _cursor_value(column: str, raw: Any) -> Any:
    if column in ("last_seen", "first_seen", "updated_at"):
        value = parse_datetime(str(raw))
        if value is None:
            raise CriteriaError("The page cursor is not valid.")
        return value
    if column == "severity":
        return float(raw)
    if column == "count":
        return int(raw)
    return str(raw)


@dataclass
class Page:
    rows: list[Finding]
    next_cursor: str | None
    sort: str
    direction: str
    criteria: dict[str, Any] = field(default_factory=dict)


def search(*, actor: Any, criteria: Mapping[str, Any], sort: str = DEFAULT_SORT, direction: str = "desc",
           cursor: str | None = None, limit: int = PAGE_SIZE, allow_matches: bool = False) -> Page:
    """One page of findings matching `criteria`, sorted by a page column, after `cursor`."""
    if sort not in SORTS:
        raise CriteriaError(f"Cannot sort by {sort!r}. Choose one of {', '.join(SORTS)}.")
    if direction not in ("asc", "desc"):
        raise CriteriaError("direction must be asc or desc.")
    column = SORTS[sort]
    rows = scoped(actor=actor).filter(criteria_q(criteria, allow_matches=allow_matches))
    if cursor:
        cursor_sort, raw_value, last_pk = decode_cursor(cursor)
        if cursor_sort != f"{sort}:{direction}":
            raise CriteriaError("The page cursor belongs to another sort order: start from the first page.")
        value = _cursor_value(column, raw_value)
        op = "lt" if direction == "desc" else "gt"
        # The redundant inclusive bound lets the database seek the sort index instead of filtering an OR.
        rows = rows.filter(Q(**{f"{column}__{op}e": value}),
                           Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"pk__{op}": int(last_pk)}))
    prefix = "-" if direction == "desc" else ""
    rows = rows.select_related("account", "detector").order_by(f"{prefix}{column}", f"{prefix}pk")
    found = list(rows[: limit + 1])
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        last = found[-1]
        value = last.account.aws_account_id if column == "account__aws_account_id" else getattr(last, column)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        next_cursor = encode_cursor([f"{sort}:{direction}", value, last.pk])
    return Page(rows=found, next_cursor=next_cursor, sort=sort, direction=direction, criteria=dict(criteria))


def summary(*, actor: Any, criteria: Mapping[str, Any], days: int = 30) -> dict[str, Any]:
    """Counts by severity, type and account, and findings per day, for the current filter."""
    rows = scoped(actor=actor).filter(criteria_q(criteria))
    by_level = dict(rows.order_by().values_list("severity_level").annotate(n=Count("id")).values_list("severity_level", "n"))
    severity = {"Critical": 0, "High": 0, "Medium": 0, "Low": 0}
    for level, n in by_level.items():
        severity[severity_label(float(level))] += n
    by_type = list(rows.order_by().values("type").annotate(n=Count("id")).order_by("-n", "type")[:8])
    by_account = list(
        rows.order_by().values("account__aws_account_id", "account__name").annotate(n=Count("id")).order_by("-n")[:8]
    )
    since = timezone.now() - dt.timedelta(days=days - 1)
    start = since.date()
    per_day = dict(
        rows.filter(last_seen__gte=dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC))
        .order_by()
        .annotate(day=TruncDate("last_seen"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    series = [(start + dt.timedelta(days=i), per_day.get(start + dt.timedelta(days=i), 0)) for i in range(days)]
    return {
        "total": sum(by_level.values()),
        "severity": severity,
        "by_type": by_type,
        "by_account": by_account,
        "series": series,
        "chart": chart_svg(series),
    }


def chart_svg(series: list[tuple[dt.date, int]], *, width: int = 600, height: int = 120) -> dict[str, Any]:
    """Bar geometry for a server-rendered SVG (the template draws it; no JavaScript needed)."""
    peak = max((n for _, n in series), default=0) or 1
    slot = width / max(len(series), 1)
    bars = []
    for i, (day, n) in enumerate(series):
        h = round((height - 20) * n / peak, 1)
        bars.append({"x": round(i * slot + 1, 1), "y": round(height - 16 - h, 1), "w": round(slot - 2, 1),
                     "h": h, "day": day, "n": n})
    return {"width": width, "height": height, "bars": bars, "peak": peak,
            "first": series[0][0] if series else None, "last": series[-1][0] if series else None}
