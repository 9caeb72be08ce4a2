"""Reads for accounts, always scoped to what the acting person may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts import access
from accounts.models import ASSOCIATED_STATUSES, Account, AuditEvent, Detector, Member, RelationshipStatus


def account_list(*, actor: Any) -> QuerySet[Account]:
    return access.accounts_visible_to(user=actor).order_by("aws_account_id")


def member_list(*, actor: Any, administrator: Account, only_associated: bool = False) -> QuerySet[Member]:
    if access.role_in(actor, administrator) is None:
        return Member.objects.none()
    members = Member.objects.filter(administrator=administrator).select_related("member", "administrator")
    if only_associated:
        members = members.filter(relationship_status__in=ASSOCIATED_STATUSES)
    return members.order_by("member__aws_account_id")


def invitation_list(*, actor: Any, member_account: Account) -> QuerySet[Member]:
    """Invitations the account has received and not yet accepted (GuardDuty ListInvitations)."""
    if access.role_in(actor, member_account) is None:
        return Member.objects.none()
    return (
        Member.objects.filter(member=member_account, relationship_status=RelationshipStatus.INVITED)
        .select_related("administrator")
        .order_by("-invited_at")
    )


def administrator_get(*, actor: Any, member_account: Account) -> Member | None:
    if access.role_in(actor, member_account) is None:
        return None
    return (
        Member.objects.filter(member=member_account, relationship_status__in=ASSOCIATED_STATUSES)
        .select_related("administrator")
        .first()
    )


def detector_list(*, actor: Any, region: str | None = None) -> QuerySet[Detector]:
    detectors = Detector.objects.filter(account__in=access.accounts_visible_to(user=actor)).select_related("account")
    if region:
        detectors = detectors.filter(region=region)
    return detectors.order_by("account__aws_account_id", "region")


def detector_get(*, actor: Any, detector_id: str) -> Detector:
    detector = detector_list(actor=actor).filter(detector_id=detector_id).first()
    if detector is None:
        raise access.NotFoundError("No such detector.")
    return detector


def audit_list(*, actor: Any, account: Account) -> QuerySet[AuditEvent]:
    """The audit log is for the account's admins only."""
    if access.role_in(actor, account) != "admin":
        return AuditEvent.objects.none()
    return AuditEvent.objects.filter(account=account).select_related("actor")
