"""Console pages: log sources (is anything flowing?) and usage (what would GuardDuty bill?)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts import access
from accounts.models import Detector
from console.errors import NotFoundError
from ingest import selectors, services
from ingest.forms import LogSourceForm

SOURCE_LABELS = {"CLOUD_TRAIL": "CloudTrail management events", "S3_LOGS": "S3 data events",
                 "FLOW_LOGS": "VPC flow logs", "DNS_LOGS": "DNS logs"}
COLOURS = {"CLOUD_TRAIL": "#3b6ea8", "S3_LOGS": "#7aa34a", "FLOW_LOGS": "#c27c2c", "DNS_LOGS": "#8a5aa8"}


def _source_form(request: HttpRequest, data: Any = None) -> LogSourceForm | None:
    account = request.active_account  # type: ignore[attr-defined]
    if account is None or access.role_in(request.user, account) != "admin":
        return None
    return LogSourceForm(data, detectors=Detector.objects.filter(account=account).order_by("region"))


@login_required
@require_GET
def source_list(request: HttpRequest) -> HttpResponse:
    sources = list(selectors.log_source_list(actor=request.user))
    for source in sources:
        source.failures = selectors.failed_object_list(actor=request.user, source=source)
    template = "ingest/source_list.html#table" if request.htmx else "ingest/source_list.html"
    return render(request, template, {"sources": sources, "form": _source_form(request)})


@login_required
@require_POST
def source_create(request: HttpRequest) -> HttpResponse:
    account = request.active_account  # type: ignore[attr-defined]
    if account is None:
        raise NotFoundError("No such account.")
    access.require_role(request.user, account, access.ADMIN_ROLES, what="configure log sources")
    form = _source_form(request, request.POST)
    if form is None or not form.is_valid():
        messages.error(request, "Check the source: detector, kind and bucket are required.")
        return redirect("ingest:sources")
    detector = Detector.objects.filter(account=account, detector_id=form.cleaned_data["detector"]).first()
    if detector is None:
        raise NotFoundError("No such detector.")
    services.log_source_create(actor=request.user, detector=detector, kind=form.cleaned_data["kind"],
                               bucket=form.cleaned_data["bucket"], key_prefix=form.cleaned_data["key_prefix"],
                               sqs_queue_url=form.cleaned_data["sqs_queue_url"])
    messages.success(request, "Log source added; discovery picks it up within a minute.")
    return redirect("ingest:sources")


def _chart(rows: list[dict[str, Any]], sources: tuple[str, ...], value: str, days: list, *, scale: float,
           unit: str) -> dict[str, Any]:
    """Stacked daily bars as SVG geometry (rendered by the template; no JavaScript)."""
    width, height, left, bottom = 720, 180, 48, 20
    per_day: dict = {d: {} for d in days}
    for row in rows:
        if row["data_source"] in sources and row["day"] in per_day:
            per_day[row["day"]][row["data_source"]] = row[value] / scale
    peak = max((sum(v.values()) for v in per_day.values()), default=0) or 1
    slot = (width - left) / max(len(days), 1)
    bars = []
    for i, day in enumerate(days):
        y = height - bottom
        for source in sources:
            amount = per_day[day].get(source, 0)
            h = (height - bottom - 10) * amount / peak
            if h > 0:
                y -= h
                bars.append({"x": round(left + i * slot + 1, 1), "y": round(y, 1), "w": round(max(slot - 2, 1), 1),
                             "h": round(h, 1), "colour": COLOURS[source],
                             "label": f"{day}: {amount:,.2f} {unit} {SOURCE_LABELS[source]}"})
    ticks = [{"x": round(left + i * slot, 1), "label": d.strftime("%m-%d")} for i, d in enumerate(days) if i % 5 == 0]
    return {"width": width, "height": height, "bars": bars, "peak": f"{peak:,.2f} {unit}", "ticks": ticks,
            "base": height - bottom, "left": left,
            "legend": [{"label": SOURCE_LABELS[s], "colour": COLOURS[s]} for s in sources]}


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    try:
        days = max(1, min(90, int(request.GET.get("days", 30))))
    except ValueError:
        days = 30
    visible = list(access.accounts_visible_to(user=request.user).order_by("aws_account_id"))
    account_ids = None
    wanted = request.GET.get("account")
    if wanted:
        account_ids = [a.id for a in visible if a.aws_account_id == wanted] or [-1]
    kw = {"actor": request.user, "account_ids": account_ids, "days": days}
    daily = selectors.usage_statistics(statistic="SUM_BY_DAY", **kw)
    today = timezone.now().date()
    day_list = [today - timedelta(days=days - 1 - i) for i in range(days)]
    context = {
        "days": days, "accounts": visible, "selected": wanted or "",
        "by_source": [{**r, "label": SOURCE_LABELS.get(r["key"], r["key"])}
                      for r in selectors.usage_statistics(statistic="SUM_BY_DATA_SOURCE", **kw)],
        "by_account": selectors.usage_statistics(statistic="SUM_BY_ACCOUNT", **kw),
        "top_buckets": selectors.usage_statistics(statistic="TOP_RESOURCES", **kw),
        "estimate": selectors.usage_monthly_estimate(**kw),
        "events_chart": _chart(daily, ("CLOUD_TRAIL", "S3_LOGS"), "events", day_list, scale=1e3, unit="k events"),
        "bytes_chart": _chart(daily, ("FLOW_LOGS", "DNS_LOGS"), "bytes", day_list, scale=1e6, unit="MB"),
    }
    return render(request, "ingest/usage.html", context)
