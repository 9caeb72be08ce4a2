"""Console pages for threat and trusted lists: thin adapters over intel.services/selectors."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts import access
from console.errors import NotFoundError, PermissionDeniedError, ServiceError
from intel import selectors, services
from intel.builtin import FEEDS, builtin_entry_counts
from intel.forms import CheckForm, IntelSetForm, ReplaceForm
from intel.models import IntelSet


def _account(request: HttpRequest):
    account = request.active_account  # type: ignore[attr-defined]
    if account is None:
        raise NotFoundError("You do not belong to any account yet: register one first.")
    return account


def _can_manage(request: HttpRequest, account) -> bool:
    try:
        access.require_manager_role(request.user, account, access.ADMIN_ROLES, what=services.MANAGE)
    except (PermissionDeniedError, NotFoundError):
        return False
    return True


def _read_upload(upload) -> bytes | None:
    return upload.read() if upload else None


def _list_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    account = _account(request)
    region = request.active_region  # type: ignore[attr-defined]
    sets = list(selectors.intel_set_list(actor=request.user, account=account))
    sets.sort(key=lambda s: (s.region != region, s.region, s.kind, s.slot or 0))
    manager = access.managing_account(account)
    return {
        "account": account,
        "manager": manager,
        "region": region,
        "groups": [(r, list(items)) for r, items in groupby(sets, key=lambda s: s.region)],
        "busy": any(s.is_busy for s in sets),
        "can_manage": _can_manage(request, account),
        "form": extra.pop("form", None) or IntelSetForm(),
        "check_form": CheckForm(),
        **extra,
    }


@login_required
@require_GET
def intel_list(request: HttpRequest) -> HttpResponse:
    context = _list_context(request)
    sizes = builtin_entry_counts()
    context["feeds"] = [(feed, sizes.get(feed.name, 0)) for feed in FEEDS]
    template = "intel/intel_list.html#lists" if request.htmx else "intel/intel_list.html"  # type: ignore[attr-defined]
    return render(request, template, context)


@login_required
@require_POST
def intel_create(request: HttpRequest) -> HttpResponse:
    account = _account(request)
    form = IntelSetForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        upload = data.get("file")
        try:
            created = services.intel_set_create(
                actor=request.user, account=account, region=request.active_region,  # type: ignore[attr-defined]
                kind=data["kind"], name=data["name"], fmt=data["format"], location=data.get("location") or "",
                content=_read_upload(upload), upload_name=upload.name if upload else "", activate=data["activate"],
            )
        except ServiceError as exc:
            form.add_error(None, exc.message)
            status = exc.status_code
        else:
            messages.success(request, f"{created.get_kind_display()} {created.name} created"
                                      f"{' and activating' if data['activate'] else ''}.")
            return redirect("intel:list")
    context = _list_context(request, form=form)
    context["feeds"] = []
    return render(request, "intel/intel_list.html", context, status=status)


@login_required
@require_GET
def intel_detail(request: HttpRequest, set_id: str) -> HttpResponse:
    intel_set = selectors.intel_set_get(actor=request.user, set_id=set_id)
    version = intel_set.active_version
    attempt = intel_set.last_attempt or {}
    failed = intel_set.status == IntelSet.Status.ERROR
    context = {
        "s": intel_set,
        "version": version,
        "rejected": attempt.get("rejected", []) if failed else (version.rejected if version else []),
        "rejected_total": attempt.get("rejected_total", 0) if failed else (version.rejected_total if version else 0),
        "can_manage": _can_manage(request, intel_set.account),
        "replace_form": ReplaceForm(initial={"format": intel_set.format}),
    }
    return render(request, "intel/intel_detail.html", context)


ACTIONS = {"activate": True, "deactivate": False}


@login_required
@require_POST
def intel_action(request: HttpRequest, set_id: str) -> HttpResponse:
    selectors.intel_set_get(actor=request.user, set_id=set_id)  # 404 before anything else for strangers
    action = request.POST.get("action", "")
    try:
        if action == "delete":
            services.intel_set_delete(actor=request.user, set_id=set_id)
            messages.success(request, "List deleted.")
        elif action in ACTIONS:
            services.intel_set_update(actor=request.user, set_id=set_id, activate=ACTIONS[action])
            messages.success(request, "Activation started." if ACTIONS[action] else "List deactivated.")
        else:
            raise ServiceError(f"Unknown action {action[:40]!r}.")
    except (PermissionDeniedError, NotFoundError):
        raise  # the error middleware answers 403/404
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("intel:list")


@login_required
@require_POST
def intel_replace(request: HttpRequest, set_id: str) -> HttpResponse:
    selectors.intel_set_get(actor=request.user, set_id=set_id)
    form = ReplaceForm(request.POST, request.FILES)
    if not form.is_valid():
        raise ServiceError(" ".join(form.errors.get("__all__", [])) or "Give a file or an s3:// location.")
    data = form.cleaned_data
    upload = data.get("file")
    services.intel_set_update(
        actor=request.user, set_id=set_id, fmt=data["format"], location=data.get("location") or None,
        content=_read_upload(upload), upload_name=upload.name if upload else "", activate=True,
    )
    messages.success(request, "Replacement uploaded; the current version stays in force until it is ready.")
    return redirect("intel:detail", set_id=set_id)


@login_required
@require_GET
def intel_check(request: HttpRequest) -> HttpResponse:
    account = _account(request)
    form = CheckForm(request.GET or None)
    result = None
    if form.is_valid():
        result = selectors.indicator_check(actor=request.user, account=account,
                                           region=request.active_region,  # type: ignore[attr-defined]
                                           value=form.cleaned_data["value"])
    template = "intel/intel_check.html#result" if request.htmx else "intel/intel_check.html"  # type: ignore[attr-defined]
    return render(request, template, {"check_form": form, "result": result,
                                      "region": request.active_region})  # type: ignore[attr-defined]
