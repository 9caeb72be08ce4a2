"""Console pages for findings: the list with filters, live updates and summary, the detail panel,
triage, saved filters and suppression rules, proposals, sample findings and destinations.

Views stay thin: they turn URL parameters into FindingCriteria (findings.search), call services
and selectors, and render full pages or HTMX partials.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access
from accounts.models import ASSOCIATED_STATUSES, Member
from console.errors import ServiceError
from findings import notifications, rules, samples, search, triage
from findings.catalog import FINDING_TYPES, severity_label
from findings.criteria import CriteriaError, criteria_q
from findings.models import Finding
from findings.rules_models import Destination, SavedFilter
from findings.serialize import finding_to_guardduty


def _render(request: HttpRequest, template: str, context: dict[str, Any], *, partial: str | None = None,
            status: int = 200) -> HttpResponse:
    name = f"{template}#{partial}" if partial and getattr(request, "htmx", False) else template
    return render(request, name, context, status=status)


def _filter_query(params: QueryDict) -> QueryDict:
    """The filter and sort parameters of a request (no cursor), for links and polling."""
    query = QueryDict(mutable=True)
    for key in (*search.FILTER_PARAMS, "sort", "dir", "view"):
        values = [v for v in params.getlist(key) if v != ""]
        if values:
            query.setlist(key, values)
    return query


def _criteria(request: HttpRequest, params: QueryDict) -> tuple[dict[str, Any], SavedFilter | None]:
    criteria = search.params_to_criteria(params)
    saved = None
    view = params.get("view")
    if view and view.isdigit():
        saved = rules.filter_get(actor=request.user, pk=int(view))
        # A saved view's criteria, refined by whatever the page adds on top (the page wins on a clash).
        merged = dict(saved.criteria.get("Criterion", {}))
        if "status" not in params and "service.archived" in merged:
            criteria["Criterion"].pop("service.archived", None)
        merged.update(criteria["Criterion"])
        criteria = {"Criterion": merged}
    return criteria, saved


def _triage_accounts(user: Any) -> bool:
    """May this person archive anything at all (an admin/analyst of a non-member account)?"""
    own = access.direct_account_ids(user)
    members = set(Member.objects.filter(member_id__in=own, relationship_status__in=ASSOCIATED_STATUSES)
                  .values_list("member_id", flat=True))
    from accounts.models import AccountMembership

    return AccountMembership.objects.filter(user=user, account_id__in=own - members,
                                            role__in=list(access.TRIAGE_ROLES)).exists()


def _list_context(request: HttpRequest, params: QueryDict) -> dict[str, Any]:
    query = _filter_query(params)
    context: dict[str, Any] = {
        "params": params, "query": query.urlencode(), "error": None, "page": None,
        "sort": params.get("sort") or search.DEFAULT_SORT, "dir": params.get("dir") or "desc",
        "status": params.get("status") or "current",
        "finding_types": sorted(FINDING_TYPES), "regions": settings.VIGIL_REGIONS,
        "accounts": access.accounts_visible_to(user=request.user).order_by("aws_account_id"),
        "resource_types": ["Instance", "AccessKey", "S3Bucket"],
        "saved_views": rules.filter_list(actor=request.user, action=SavedFilter.Action.NOOP),
        "can_triage": _triage_accounts(request.user), "poll_seconds": getattr(settings, "VIGIL_FINDINGS_POLL_SECONDS", 5),
        "cursor": params.get("cursor") or "",
    }
    try:
        criteria, saved = _criteria(request, params)
        page = search.search(actor=request.user, criteria=criteria, sort=context["sort"], direction=context["dir"],
                             cursor=params.get("cursor") or None)
    except ServiceError as exc:
        context["error"] = exc.message
        return context
    # The live marker counts findings updated after this render (cheap: the (account, updated_at) index).
    rendered_at = timezone.now()
    sort_links = {}
    for column in search.SORTS:
        q = query.copy()
        direction = "asc" if context["sort"] == column and context["dir"] == "desc" else "desc"
        q["sort"], q["dir"] = column, direction
        sort_links[column] = q.urlencode()
    next_query = None
    if page.next_cursor:
        q = query.copy()
        q["cursor"] = page.next_cursor
        next_query = q.urlencode()
    _decorate(page.rows)
    context.update(
        page=page, saved_view=saved, detail_base=reverse("findings:detail", args=["-"])[:-2], criteria_json=json.dumps(criteria, indent=2, sort_keys=True),
        newest=rendered_at.isoformat(), sort_links=sort_links, next_query=next_query,
        rule_query=urlencode({"criteria": json.dumps(criteria)}),
    )
    return context


def _severity_class(severity: float) -> str:
    return "critical" if severity >= 9 else "high" if severity >= 7 else "medium" if severity >= 4 else "low"


def _decorate(rows: list[Finding]) -> None:
    """Per-row display values computed once in Python: the template loop stays cheap (50 rows a page)."""
    for f in rows:
        f.sev_class = _severity_class(f.severity)
        f.sev_text = f"{f.severity:.1f}"
        f.last_seen_text = f.last_seen.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d %H:%M")
        f.title_short = f.title if len(f.title) <= 110 else f.title[:109] + "…"


@login_required
@require_GET
def finding_list(request: HttpRequest) -> HttpResponse:
    context = _list_context(request, request.GET)
    return _render(request, "findings/finding_list.html", context, partial="results",
                   status=400 if context["error"] else 200)


@login_required
@require_GET
def finding_summary(request: HttpRequest) -> HttpResponse:
    """Counts and the chart for the page's filter, loaded after the table so the table never waits on them."""
    try:
        criteria, _ = _criteria(request, request.GET)
        summary = search.summary(actor=request.user, criteria=criteria)
    except ServiceError as exc:
        return render(request, "findings/finding_list.html#summary", {"error": exc.message}, status=exc.status_code)
    return render(request, "findings/finding_list.html#summary", {"summary": summary})


@login_required
@require_GET
def finding_poll(request: HttpRequest) -> HttpResponse:
    """How many findings matching the page's filter changed since the page's newest one."""
    since = parse_datetime(request.GET.get("since") or "")
    count = 0
    if since is not None:
        try:
            criteria, _ = _criteria(request, request.GET)
            count = search.scoped(actor=request.user).filter(criteria_q(criteria), updated_at__gt=since).count()
        except ServiceError:
            count = 0
    return render(request, "findings/finding_list.html#newmarker",
                  {"new_count": count, "query": _filter_query(request.GET).urlencode()})


def _related(request: HttpRequest, finding: Finding) -> list[Finding]:
    q = Q()
    if finding.resource_id:
        q |= Q(resource_id=finding.resource_id)
    if finding.remote_ip:
        q |= Q(remote_ip=finding.remote_ip)
    if finding.access_key_id:
        q |= Q(access_key_id=finding.access_key_id)
    if not q:
        return []
    return list(search.scoped(actor=request.user).filter(q).exclude(pk=finding.pk)
                .select_related("account").order_by("-last_seen", "-pk")[:10])


def _may_give_feedback(user: Any, account: Any) -> bool:
    roles = {access.role_in(user, account), access.role_in(user, access.managing_account(account))}
    return bool(roles & set(access.TRIAGE_ROLES))


def _detail_context(request: HttpRequest, finding_id: str) -> dict[str, Any]:
    finding = search.scoped(actor=request.user).select_related("account", "detector").filter(
        finding_id=finding_id).first()
    if finding is None:
        from console.errors import NotFoundError

        raise NotFoundError("No such finding.")
    document = finding_to_guardduty(finding)
    info = (finding.service or {}).get("additionalInfo") or {}
    anomaly = {k: info[k] for k in ("unusual", "profiledBehavior", "unusualBehavior") if info.get(k)}
    try:
        access.require_manager_role(request.user, finding.account, access.TRIAGE_ROLES, what="archive findings")
        can_archive = True
    except ServiceError:
        can_archive = False
    return {
        "f": finding, "label": severity_label(finding.severity),
        "action_json": json.dumps((finding.service or {}).get("action") or {}, indent=2, sort_keys=True),
        "resource_json": json.dumps(finding.resource or {}, indent=2, sort_keys=True),
        "anomaly_json": json.dumps(anomaly, indent=2, sort_keys=True) if anomaly else "",
        "evidence": [json.dumps(e, indent=2, sort_keys=True) for e in finding.evidence_events or []],
        "document_json": json.dumps(document, indent=2, sort_keys=True),
        "related": _related(request, finding), "can_archive": can_archive,
        "can_feedback": _may_give_feedback(request.user, finding.account),
        "suppress_query": urlencode({"from": finding.finding_id}),
    }


@login_required
@require_GET
def finding_detail(request: HttpRequest, finding_id: str) -> HttpResponse:
    context = _detail_context(request, finding_id)
    if getattr(request, "htmx", False):
        return render(request, "findings/finding_detail.html#panel", context)
    return render(request, "findings/finding_detail.html", context)


@login_required
@require_POST
def finding_feedback(request: HttpRequest, finding_id: str) -> HttpResponse:
    status = 200
    try:
        triage.findings_set_feedback(actor=request.user,
                                     findings=search.findings_by_ids(actor=request.user, finding_ids=[finding_id]),
                                     feedback=request.POST.get("feedback", ""))
        messages.success(request, "Thanks: feedback recorded.")
    except ServiceError as exc:
        messages.error(request, exc.message)
        status = exc.status_code
    if not getattr(request, "htmx", False) and status < 400:
        return redirect("findings:detail", finding_id=finding_id)
    context = _detail_context(request, finding_id)
    return render(request, "findings/finding_detail.html#panel" if getattr(request, "htmx", False)
                  else "findings/finding_detail.html", context, status=status)


@login_required
@require_POST
def findings_archive(request: HttpRequest) -> HttpResponse:
    """Archive or unarchive the selected findings, then show the list again with the same filter."""
    archived = request.POST.get("action") != "unarchive"
    status = 200
    try:
        findings = search.findings_by_ids(actor=request.user, finding_ids=request.POST.getlist("finding_ids"))
        n = triage.findings_set_archived(actor=request.user, findings=findings, archived=archived)
        messages.success(request, f"{n} finding{'s' if n != 1 else ''} {'archived' if archived else 'unarchived'}.")
    except ServiceError as exc:
        messages.error(request, exc.message)
        status = exc.status_code
    params = QueryDict(request.POST.get("query", ""))
    if not getattr(request, "htmx", False):
        return redirect(reverse("findings:list") + ("?" + params.urlencode() if params else ""))
    context = _list_context(request, params)
    return render(request, "findings/finding_list.html#results", context, status=status)


@login_required
@require_POST
def findings_samples(request: HttpRequest) -> HttpResponse:
    account = request.active_account  # type: ignore[attr-defined]
    region = request.active_region or settings.VIGIL_REGIONS[0]  # type: ignore[attr-defined]
    try:
        if account is None:
            raise ServiceError("Register an account first.")
        detector = account.detectors.filter(region=region).first()
        if detector is None:
            raise ServiceError(f"Account {account.aws_account_id} has no detector in {region}: create one first.")
        result = samples.sample_findings_create(actor=request.user, detector=detector)
        messages.success(request, f"{result.total} sample findings generated in {region}.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("findings:list")


# --- saved filters and suppression rules -----------------------------------------------------

def _manager_accounts(user: Any) -> list[Any]:
    """Accounts whose rules this person may manage (admin/analyst of a non-member account)."""
    own = access.direct_account_ids(user)
    out = []
    for account in access.accounts_visible_to(user=user).filter(id__in=own).order_by("aws_account_id"):
        try:
            if access.require_manager_role(user, account, access.TRIAGE_ROLES, what="manage rules").id == account.id:
                out.append(account)
        except ServiceError:
            continue
    return out


@login_required
@require_GET
def filter_list(request: HttpRequest) -> HttpResponse:
    proposals = []
    for proposal in rules.proposal_list(actor=request.user):
        proposals.append({"p": proposal, "matches": rules.filter_preview(actor=request.user, account=proposal.account,
                                                                         criteria=proposal.criteria),
                          "criteria_json": json.dumps(proposal.criteria, sort_keys=True)})
    rows = [{"r": r, "criteria_json": json.dumps(r.criteria, sort_keys=True)} for r in rules.filter_list(actor=request.user)]
    return render(request, "findings/filter_list.html", {
        "rows": rows, "proposals": proposals, "can_manage": bool(_manager_accounts(request.user)),
    })


def _form_initial(request: HttpRequest, saved: SavedFilter | None) -> dict[str, Any]:
    if saved is not None:
        return {"name": saved.name, "description": saved.description, "action": saved.action, "rank": saved.rank,
                "criteria": json.dumps(saved.criteria, indent=2, sort_keys=True), "account": saved.account_id}
    initial: dict[str, Any] = {"name": "", "description": "", "action": SavedFilter.Action.ARCHIVE, "rank": 1,
                               "criteria": json.dumps({"Criterion": {}}, indent=2)}
    source = request.GET.get("from")
    if source:
        finding = search.scoped(actor=request.user).filter(finding_id=source).first()
        if finding is not None:
            initial["criteria"] = json.dumps(rules.criteria_from_finding(finding), indent=2, sort_keys=True)
            initial["description"] = f"Suppress {finding.type} like finding {finding.finding_id}."
            initial["account"] = access.managing_account(finding.account).id
    elif request.GET.get("criteria"):
        try:
            criteria = json.loads(request.GET["criteria"])
            criteria.get("Criterion", {}).pop("service.archived", None)
            initial["criteria"] = json.dumps(criteria, indent=2, sort_keys=True)
            initial["action"] = SavedFilter.Action.NOOP
        except (ValueError, AttributeError):
            pass
    return initial


def _parse_form(request: HttpRequest) -> dict[str, Any]:
    post = request.POST
    try:
        criteria = json.loads(post.get("criteria") or "{}")
    except ValueError as exc:
        raise CriteriaError(f"The criteria are not valid JSON: {exc}.") from exc
    try:
        rank = int(post.get("rank") or 1)
    except ValueError as exc:
        raise ServiceError("The rank is a whole number between 1 and 100.") from exc
    return {"name": (post.get("name") or "").strip(), "description": (post.get("description") or "").strip(),
            "action": post.get("action") or SavedFilter.Action.NOOP, "rank": rank, "criteria": criteria}


@login_required
@require_http_methods(["GET", "POST"])
def filter_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    saved = rules.filter_get(actor=request.user, pk=pk) if pk else None
    accounts = _manager_accounts(request.user)
    initial = _form_initial(request, saved)
    status, error = 200, None
    if request.method == "POST":
        initial = {**initial, **{k: request.POST.get(k, "") for k in ("name", "description", "action", "rank",
                                                                       "criteria", "account")}}
        try:
            data = _parse_form(request)
            if saved is None:
                account_id = request.POST.get("account") or ""
                account = access.access_account_by_id(request.user, int(account_id)) if account_id.isdigit() else None
                if account is None:
                    raise ServiceError("Choose the account the rule belongs to.")
                saved = rules.filter_create(actor=request.user, account=account, **data)
                messages.success(request, f"Filter {saved.name} saved.")
            else:
                rules.filter_update(actor=request.user, saved_filter=saved, **data)
                messages.success(request, f"Filter {saved.name} updated.")
            return redirect("findings:filters")
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
    return render(request, "findings/filter_form.html", {"saved": saved, "initial": initial, "accounts": accounts,
                                                         "error": error, "actions": SavedFilter.Action.choices},
                  status=status)


@login_required
@require_POST
def filter_preview(request: HttpRequest) -> HttpResponse:
    """How many existing findings the criteria in the form match (before saving)."""
    context: dict[str, Any] = {"count": None, "error": None}
    try:
        data = _parse_form(request)
        account_id = request.POST.get("account") or ""
        accounts = _manager_accounts(request.user)
        account = next((a for a in accounts if str(a.id) == account_id), accounts[0] if accounts else None)
        if account is None:
            raise ServiceError("You do not manage any account's rules.")
        context["count"] = rules.filter_preview(actor=request.user, account=account, criteria=data["criteria"])
    except ServiceError as exc:
        context["error"] = exc.message
        return render(request, "findings/filter_form.html#preview", context, status=exc.status_code)
    return render(request, "findings/filter_form.html#preview", context)


@login_required
@require_POST
def filter_delete(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        saved = rules.filter_get(actor=request.user, pk=pk)
        rules.filter_delete(actor=request.user, saved_filter=saved)
        messages.success(request, f"Filter {saved.name} deleted.")
    except ServiceError as exc:
        messages.error(request, exc.message)
        return render(request, "error.html", {"message": exc.message}, status=exc.status_code)
    return redirect("findings:filters")


@login_required
@require_POST
def proposal_decide(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        proposal = rules.proposal_get(actor=request.user, pk=pk)
        rule = rules.proposal_decide(actor=request.user, proposal=proposal, accept=request.POST.get("decision") == "accept")
        messages.success(request, f"Suppression rule {rule.name} created." if rule else "Proposal dismissed.")
    except ServiceError as exc:
        messages.error(request, exc.message)
        return render(request, "error.html", {"message": exc.message}, status=exc.status_code)
    return redirect("findings:filters")


# --- destinations ----------------------------------------------------------------------------

# Form fields stored in Destination.config (which apply depends on the kind).
CONFIG_FIELDS = ("bucket", "prefix", "kms_key_arn", "expected_bucket_owner", "region", "event_bus_name", "endpoint_url")

@login_required
@require_http_methods(["GET", "POST"])
def destination_list(request: HttpRequest) -> HttpResponse:
    accounts = [a for a in _manager_accounts(request.user)
                if access.role_in(request.user, a) in access.ADMIN_ROLES]
    status, error = 200, None
    initial: dict[str, Any] = {"kind": Destination.Kind.WEBHOOK, "min_severity": "1", "criteria": ""}
    if request.method == "POST":
        initial = request.POST.dict()
        try:
            account_id = request.POST.get("account") or ""
            account = access.access_account_by_id(request.user, int(account_id)) if account_id.isdigit() else None
            if account is None:
                raise ServiceError("Choose the account the destination belongs to.")
            raw = (request.POST.get("criteria") or "").strip()
            criteria = json.loads(raw) if raw else {}
            config = {k: request.POST.get(k, "").strip() for k in CONFIG_FIELDS if request.POST.get(k, "").strip()}
            destination = notifications.destination_create(
                actor=request.user, account=account, name=(request.POST.get("name") or "").strip(),
                kind=request.POST.get("kind") or "", url=(request.POST.get("url") or "").strip(), config=config,
                min_severity=float(request.POST.get("min_severity") or 1), criteria=criteria)
            messages.success(request, f"Destination {destination.name} added.")
            return redirect("findings:destination", pk=destination.pk)
        except ValueError as exc:
            error, status = f"Invalid value: {exc}.", 400
        except ServiceError as exc:
            error, status = exc.message, exc.status_code
    return render(request, "findings/destination_list.html", {
        "destinations": notifications.destination_list(actor=request.user), "accounts": accounts,
        "kinds": Destination.Kind.choices, "error": error, "initial": initial,
    }, status=status)


@login_required
@require_GET
def destination_detail(request: HttpRequest, pk: int) -> HttpResponse:
    destination = notifications.destination_get(actor=request.user, pk=pk)
    return render(request, "findings/destination_detail.html", {
        "d": destination, "deliveries": destination.deliveries.order_by("-created_at", "-id")[:50],
        "pending": destination.deliveries.filter(status="PENDING").count(),
        "is_admin": access.role_in(request.user, destination.account) in access.ADMIN_ROLES,
    })


@login_required
@require_POST
def destination_test(request: HttpRequest, pk: int) -> HttpResponse:
    destination = notifications.destination_get(actor=request.user, pk=pk)
    delivery = notifications.destination_test(actor=request.user, destination=destination)
    return render(request, "findings/destination_detail.html#testresult", {"delivery": delivery})


@login_required
@require_POST
def destination_delete(request: HttpRequest, pk: int) -> HttpResponse:
    destination = notifications.destination_get(actor=request.user, pk=pk)
    notifications.destination_delete(actor=request.user, destination=destination)  # refusals: ServiceErrorMiddleware
    messages.success(request, "Destination deleted.")
    return redirect("findings:destinations")

