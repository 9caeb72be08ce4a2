"""Console pages: what Vigil has learned about each principal and instance of an account."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console.errors import NotFoundError
from ingest.anomaly import selectors
from ingest.anomaly.models import Baseline


@login_required
@require_GET
def baseline_list(request: HttpRequest) -> HttpResponse:
    account = request.active_account  # type: ignore[attr-defined]
    if account is None:
        raise NotFoundError("You do not belong to any account yet: register one first.")
    kind = request.GET.get("kind") or None
    if kind not in (None, Baseline.Kind.PRINCIPAL, Baseline.Kind.INSTANCE, Baseline.Kind.S3):
        kind = None
    query = (request.GET.get("q") or "").strip()[:1024]
    rows = selectors.baseline_list(actor=request.user, account=account, kind=kind, query=query)
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    template = "ingest/baseline_list.html" + ("#table" if getattr(request, "htmx", False) else "")
    return render(request, template, {"account": account, "page": page, "kind": kind or "", "q": query})


@login_required
@require_GET
def baseline_detail(request: HttpRequest, pk: int) -> HttpResponse:
    learned = selectors.baseline_learned(actor=request.user, pk=pk)
    return render(request, "ingest/baseline_detail.html", {"learned": learned, "baseline": learned.row})
