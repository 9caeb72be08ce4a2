"""Console pages for accounts, members, invitations, detectors and the audit log.

Views stay thin: forms validate shape, services decide and write, selectors read. A refused
action is answered with its status code (400/403/404/409) and the reason on the page.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import access, selectors, services
from accounts.authentication import api_token_create
from accounts.forms import (
    AccountCreateForm,
    AccountSettingsForm,
    AccountUserForm,
    DetectorCreateForm,
    DetectorSettingsForm,
    MemberActionForm,
    MemberAddForm,
)
from accounts.middleware import SESSION_ACCOUNT, SESSION_REGION
from accounts.models import ApiToken, Detector, Member
from console.errors import NotFoundError, ServiceError


def _render(request: HttpRequest, template: str, context: dict[str, Any], *, partial: str | None = None,
            status: int = 200) -> HttpResponse:
    name = f"{template}#{partial}" if partial and getattr(request, "htmx", False) else template
    return render(request, name, context, status=status)


def _report_unprocessed(request: HttpRequest, unprocessed: list[services.Unprocessed], done: str) -> None:
    for item in unprocessed:
        messages.error(request, f"{item.account_id}: {item.result}")
    if not unprocessed:
        messages.success(request, done)


def _require_active_account(request: HttpRequest):
    account = request.active_account  # type: ignore[attr-defined]
    if account is None:
        raise NotFoundError("You do not belong to any account yet: register one first.")
    return account


# --- account switcher -----------------------------------------------------------------------


@login_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    account_id = request.POST.get("account")
    if account_id and account_id.isdigit() and int(account_id) in access.direct_account_ids(request.user):
        request.session[SESSION_ACCOUNT] = int(account_id)
    region = request.POST.get("region")
    if region in settings.VIGIL_REGIONS:
        request.session[SESSION_REGION] = region
    target = request.POST.get("next") or reverse("home")
    if not target.startswith("/") or target.startswith("//"):
        target = reverse("home")
    return redirect(target)


# --- accounts and members -------------------------------------------------------------------


def _members_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    account = request.active_account  # type: ignore[attr-defined]
    context: dict[str, Any] = {"account": account, "accounts": selectors.account_list(actor=request.user)}
    if account is not None:
        role = access.role_in(request.user, account)
        context.update(
            role=role,
            is_admin=role == "admin",
            members=list(selectors.member_list(actor=request.user, administrator=account)),
            administrator=selectors.administrator_get(actor=request.user, member_account=account),
            invitation_count=selectors.invitation_list(actor=request.user, member_account=account).count(),
            add_form=MemberAddForm(),
        )
    context.update(extra)
    return context


@login_required
@require_GET
def account_list(request: HttpRequest) -> HttpResponse:
    return _render(request, "accounts/account_list.html", _members_context(request), partial="members")


@login_required
@require_http_methods(["GET", "POST"])
def account_create(request: HttpRequest) -> HttpResponse:
    form = AccountCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                account = services.account_create(actor=request.user, **form.cleaned_data)
            except ServiceError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                request.session[SESSION_ACCOUNT] = account.id
                messages.success(request, f"Account {account.aws_account_id} registered. Create a detector next.")
                return redirect("accounts:detectors")
    return render(request, "accounts/account_form.html", {"form": form}, status=status)


@login_required
@require_POST
def member_add(request: HttpRequest) -> HttpResponse:
    status = 200
    try:
        account = _require_active_account(request)
        form = MemberAddForm(request.POST)
        if not form.is_valid():
            return _render(request, "accounts/account_list.html", _members_context(request, add_form=form),
                           partial="members", status=400)
        unprocessed = services.member_create(actor=request.user, administrator=account,
                                             account_details=form.cleaned_data["details"])
        _report_unprocessed(request, unprocessed, "Member accounts added. Invite them next.")
        status = 200 if not unprocessed else 207 if len(unprocessed) < len(form.cleaned_data["details"]) else 400
    except ServiceError as exc:
        messages.error(request, exc.message)
        status = exc.status_code
    if not getattr(request, "htmx", False) and status < 400:
        return redirect("accounts:list")
    return _render(request, "accounts/account_list.html", _members_context(request), partial="members",
                   status=200 if status == 207 else status)


MEMBER_ACTIONS = {
    "invite": (services.member_invite, "Invitations sent."),
    "disassociate": (services.member_disassociate, "Members disassociated."),
    "delete": (services.member_delete, "Members deleted."),
    "stop_monitoring": (services.member_monitoring_stop, "Monitoring stopped."),
    "start_monitoring": (services.member_monitoring_start, "Monitoring started."),
}


@login_required
@require_POST
def member_action(request: HttpRequest) -> HttpResponse:
    status = 200
    try:
        account = _require_active_account(request)
        member_ids = [m.member.aws_account_id for m in Member.objects.filter(administrator=account).select_related("member")]
        form = MemberActionForm(request.POST, member_ids=member_ids)
        if not form.is_valid():
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
            status = 400
        else:
            service, done = MEMBER_ACTIONS[form.cleaned_data["action"]]
            kwargs: dict[str, Any] = {"actor": request.user, "administrator": account,
                                      "account_ids": form.cleaned_data["account_ids"]}
            if form.cleaned_data["action"] == "invite":
                kwargs["message"] = form.cleaned_data["message"]
            unprocessed = service(**kwargs)
            _report_unprocessed(request, unprocessed, done)
            if unprocessed and len(unprocessed) == len(form.cleaned_data["account_ids"]):
                status = 409
    except ServiceError as exc:
        messages.error(request, exc.message)
        status = exc.status_code
    if not getattr(request, "htmx", False) and status < 400:
        return redirect("accounts:list")
    return _render(request, "accounts/account_list.html", _members_context(request), partial="members", status=status)


# --- invitations (member side) --------------------------------------------------------------


def _invitations_context(request: HttpRequest) -> dict[str, Any]:
    account = request.active_account  # type: ignore[attr-defined]
    if account is None:
        return {"account": None, "invitations": [], "administrator": None}
    return {
        "account": account,
        "is_admin": access.role_in(request.user, account) == "admin",
        "invitations": list(selectors.invitation_list(actor=request.user, member_account=account)),
        "administrator": selectors.administrator_get(actor=request.user, member_account=account),
    }


@login_required
@require_GET
def invitation_list(request: HttpRequest) -> HttpResponse:
    return _render(request, "accounts/invitation_list.html", _invitations_context(request), partial="inbox")


@login_required
@require_POST
def invitation_respond(request: HttpRequest) -> HttpResponse:
    status = 200
    try:
        account = _require_active_account(request)
        administrator_id = request.POST.get("administrator_id", "")
        decision = request.POST.get("decision")
        if decision == "accept":
            services.invitation_accept(actor=request.user, member_account=account, administrator_aws_id=administrator_id,
                                       invitation_id=request.POST.get("invitation_id", ""))
            messages.success(request, f"You are now a member of {administrator_id}.")
        elif decision in ("decline", "delete"):
            service = services.invitation_decline if decision == "decline" else services.invitation_delete
            unprocessed = service(actor=request.user, member_account=account, administrator_aws_ids=[administrator_id])
            _report_unprocessed(request, unprocessed, f"Invitation from {administrator_id} {decision}d.")
            status = 409 if unprocessed else 200
        elif decision == "leave":
            services.administrator_disassociate(actor=request.user, member_account=account)
            messages.success(request, "You left your administrator.")
        else:
            raise ServiceError("Unknown decision.")
    except ServiceError as exc:
        messages.error(request, exc.message)
        status = exc.status_code
    if not getattr(request, "htmx", False) and status < 400:
        return redirect("accounts:invitations")
    return _render(request, "accounts/invitation_list.html", _invitations_context(request), partial="inbox", status=status)


# --- detectors ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def detector_list(request: HttpRequest) -> HttpResponse:
    form = DetectorCreateForm(request.POST or None, initial={"region": request.active_region})  # type: ignore[attr-defined]
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                account = _require_active_account(request)
                detector = services.detector_create(actor=request.user, account=account, region=form.cleaned_data["region"])
            except ServiceError as exc:
                messages.error(request, exc.message)
                status = exc.status_code
            else:
                messages.success(request, f"Detector {detector.detector_id} enabled in {detector.region}.")
                return redirect("accounts:detector", detector_id=detector.detector_id)
    detectors = selectors.detector_list(actor=request.user)
    return render(request, "accounts/detector_list.html", {"detectors": detectors, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def detector_detail(request: HttpRequest, detector_id: str) -> HttpResponse:
    detector = selectors.detector_get(actor=request.user, detector_id=detector_id)
    initial = {
        "finding_publishing_frequency": detector.finding_publishing_frequency,
        "cloudtrail": detector.cloudtrail_enabled,
        "s3_data_events": detector.s3_data_events_enabled,
        "flow_logs": detector.flow_logs_enabled,
        "dns_logs": detector.dns_logs_enabled,
    }
    form = DetectorSettingsForm(initial=initial)
    status = 200
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "settings":
                form = DetectorSettingsForm(request.POST)
                if not form.is_valid():
                    raise ServiceError("Check the settings.")
                data = form.cleaned_data
                services.detector_update(
                    actor=request.user, detector=detector,
                    finding_publishing_frequency=(
                        data["finding_publishing_frequency"]
                        if data["finding_publishing_frequency"] != detector.finding_publishing_frequency else None
                    ),
                    data_sources={k: data[k] for k in services.DATA_SOURCE_FIELDS},
                )
                messages.success(request, "Detector settings saved.")
            elif op == "suspend":
                services.detector_suspend(actor=request.user, detector=detector)
                messages.success(request, "Detector suspended: nothing is processed until you resume it. Findings are kept.")
            elif op == "resume":
                services.detector_resume(actor=request.user, detector=detector)
                messages.success(request, "Detector resumed: processing continues where it stopped.")
            elif op == "delete":
                services.detector_delete(actor=request.user, detector=detector, confirm=request.POST.get("confirm", ""))
                messages.success(request, f"Detector {detector_id} disabled and its findings deleted.")
                return redirect("accounts:detectors")
            else:
                raise ServiceError("Unknown operation.")
        except ServiceError as exc:
            messages.error(request, exc.message)
            status = exc.status_code
        else:
            return redirect("accounts:detector", detector_id=detector_id)
        detector.refresh_from_db()
    context = {
        "detector": detector,
        "form": form,
        "can_manage": access.role_in(request.user, detector.account) == "admin",
        "administrator": access.administrator_of(detector.account),
        "open_members": Member.objects.filter(administrator=detector.account).exclude(
            relationship_status__in=["Removed", "Resigned"]).count(),
    }
    return render(request, "accounts/detector_detail.html", context, status=status)


# --- account settings, people, audit log, API tokens ----------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    account = _require_active_account(request)
    role = access.role_in(request.user, account)
    form = AccountSettingsForm(initial={
        "name": account.name, "email": account.email, "role_arn": account.role_arn,
        "external_id": account.external_id, "is_organization_management": account.is_organization_management,
    })
    user_form = AccountUserForm()
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("op") == "account":
                form = AccountSettingsForm(request.POST)
                if not form.is_valid():
                    raise ServiceError("Check the account settings.")
                services.account_update(actor=request.user, account=account, **form.cleaned_data)
                messages.success(request, "Account settings saved.")
            elif request.POST.get("op") == "user_add":
                user_form = AccountUserForm(request.POST)
                if not user_form.is_valid():
                    raise ServiceError("Check the person's details.")
                services.account_user_add(actor=request.user, account=account, **user_form.cleaned_data)
                messages.success(request, f"{user_form.cleaned_data['username']} now has the {user_form.cleaned_data['role']} role.")
            elif request.POST.get("op") == "user_remove":
                services.account_user_remove(actor=request.user, account=account, username=request.POST.get("username", ""))
                messages.success(request, "Person removed from the account.")
            elif request.POST.get("op") == "token_create":
                token, raw = api_token_create(user=request.user, name=request.POST.get("name") or "API token")
                from accounts.events import audit_record

                audit_record(account=account, actor=request.user, action="api_token.created", target=token.prefix)
                messages.success(request, f"New API token (shown once, copy it now): {raw}")
            elif request.POST.get("op") == "token_revoke":
                from django.utils import timezone

                from accounts.events import audit_record

                revoked = ApiToken.objects.filter(user=request.user, id=request.POST.get("token_id") or 0,
                                                  revoked_at=None).update(revoked_at=timezone.now())
                if not revoked:
                    raise NotFoundError("No such token.")
                audit_record(account=account, actor=request.user, action="api_token.revoked",
                             target=request.POST.get("token_id", ""))
                messages.success(request, "Token revoked.")
            elif request.POST.get("op") == "access_key_create":
                from gdapi.services import access_key_create

                key, secret = access_key_create(actor=request.user, account=account,
                                                description=request.POST.get("description", ""))
                messages.success(request, f"New GuardDuty API access key {key.access_key_id}; secret (shown once, "
                                          f"copy it now): {secret}")
            elif request.POST.get("op") == "access_key_revoke":
                from gdapi.services import access_key_revoke

                access_key_revoke(actor=request.user, access_key_id=request.POST.get("access_key_id", ""))
                messages.success(request, "Access key revoked.")
            else:
                raise ServiceError("Unknown operation.")
        except ServiceError as exc:
            messages.error(request, exc.message)
            status = exc.status_code
        else:
            return redirect("accounts:settings")
    context = {
        "account": account,
        "role": role,
        "is_admin": role == "admin",
        "form": form,
        "user_form": user_form,
        "people": account.memberships.select_related("user").order_by("user__username"),
        "tokens": ApiToken.objects.filter(user=request.user).order_by("-created_at"),
        "access_keys": _access_keys(request),
        "audit_events": selectors.audit_list(actor=request.user, account=account)[:100],
        "administrator": access.administrator_of(account),
    }
    return render(request, "accounts/account_settings.html", context, status=status)


def _access_keys(request: HttpRequest) -> list[Any]:
    from gdapi.selectors import access_key_list

    return list(access_key_list(actor=request.user))


def detector_status_label(detector: Detector) -> str:
    return "Enabled" if detector.is_enabled else "Suspended"
