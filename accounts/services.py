"""Writes for accounts, detectors and administrator/member relationships (GuardDuty semantics).

Every service takes the acting user, checks that person's role through `accounts.access`, writes
in one transaction and records an audit event. Bulk operations answer like GuardDuty's: the ids
that could not be processed come back with the reason, the rest are carried out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import (
    ASSOCIATED_STATUSES,
    OPEN_MEMBER_STATUSES,
    Account,
    AccountMembership,
    Detector,
    Member,
    RelationshipStatus,
    Role,
    new_invitation_id,
)
from console.errors import ConflictError, NotFoundError, PermissionDeniedError, ServiceError

ACCOUNT_ID_RE = re.compile(r"^\d{12}$")
ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


@dataclass(frozen=True)
class Unprocessed:
    account_id: str
    result: str

    def as_dict(self) -> dict[str, str]:
        return {"AccountId": self.account_id, "Result": self.result}


def _check_bulk(account_ids: list[str]) -> None:
    if not account_ids:
        raise ServiceError("Give at least one account id.")
    if len(account_ids) > settings.VIGIL_BULK_ACCOUNTS_MAX:
        raise ServiceError(f"At most {settings.VIGIL_BULK_ACCOUNTS_MAX} accounts per request ({len(account_ids)} given).")


def _lock_accounts(*accounts: Account) -> None:
    """Lock account rows in primary-key order, so concurrent relationship changes serialise
    without deadlocking (on PostgreSQL; SQLite serialises all writers anyway)."""
    ids = sorted({a.id for a in accounts})
    list(Account.objects.select_for_update().filter(id__in=ids).order_by("id").values_list("id", flat=True))


def _is_administrator(account: Account) -> bool:
    return Member.objects.filter(administrator=account, relationship_status__in=ASSOCIATED_STATUSES).exists()


def _is_member(account: Account) -> bool:
    return Member.objects.filter(member=account, relationship_status__in=ASSOCIATED_STATUSES).exists()


# --- accounts -------------------------------------------------------------------------------


def validate_role_arn(role_arn: str) -> None:
    if role_arn and not ROLE_ARN_RE.match(role_arn):
        raise ServiceError("The role ARN must look like arn:aws:iam::123456789012:role/VigilReader.")


@transaction.atomic
def account_create(
    *,
    actor: Any,
    aws_account_id: str,
    name: str,
    email: str = "",
    role_arn: str = "",
    external_id: str = "",
    is_organization_management: bool = False,
) -> Account:
    """Register an AWS account; the person registering it becomes its admin."""
    aws_account_id = aws_account_id.strip()
    if not ACCOUNT_ID_RE.match(aws_account_id):
        raise ServiceError("An AWS account id is exactly 12 digits.")
    if not name.strip():
        raise ServiceError("Give the account a name.")
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ServiceError("The email address is not valid.") from exc
    validate_role_arn(role_arn)
    if Account.objects.filter(aws_account_id=aws_account_id).exists():
        raise ConflictError(f"Account {aws_account_id} is already registered in Vigil; ask one of its admins to add you.")
    account = Account.objects.create(
        aws_account_id=aws_account_id,
        name=name.strip(),
        email=email,
        role_arn=role_arn,
        external_id=external_id,
        is_organization_management=is_organization_management,
    )
    if getattr(actor, "is_authenticated", False):
        AccountMembership.objects.create(user=actor, account=account, role=Role.ADMIN)
    audit_record(account=account, actor=actor, action="account.created", target=aws_account_id)
    return account


@transaction.atomic
def account_update(
    *, actor: Any, account: Account, name: str, email: str, role_arn: str, external_id: str,
    is_organization_management: bool,
) -> Account:
    access.require_role(actor, account, access.ADMIN_ROLES, what="change the account settings")
    validate_role_arn(role_arn)
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ServiceError("The email address is not valid.") from exc
    account.name, account.email, account.role_arn = name.strip() or account.name, email, role_arn
    account.external_id, account.is_organization_management = external_id, is_organization_management
    account.save()
    audit_record(account=account, actor=actor, action="account.updated", target=account.aws_account_id)
    return account


@transaction.atomic
def account_user_add(*, actor: Any, account: Account, username: str, role: str, password: str = "") -> AccountMembership:
    """Give a person a role in the account, creating the user when a password is given."""
    access.require_role(actor, account, access.ADMIN_ROLES, what="manage people")
    if role not in Role.values:
        raise ServiceError(f"Role must be one of {', '.join(Role.values)}.")
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        if not password:
            raise NotFoundError(f"No user {username!r}; give a password to create one.")
        user = user_model.objects.create_user(username=username, password=password)
    membership, created = AccountMembership.objects.update_or_create(user=user, account=account, defaults={"role": role})
    audit_record(account=account, actor=actor, action="account.user_added" if created else "account.user_role_changed",
                 target=username, role=role)
    return membership


@transaction.atomic
def account_user_remove(*, actor: Any, account: Account, username: str) -> None:
    access.require_role(actor, account, access.ADMIN_ROLES, what="manage people")
    membership = AccountMembership.objects.filter(account=account, user__username=username).first()
    if membership is None:
        raise NotFoundError(f"{username} is not in this account.")
    if membership.role == Role.ADMIN and AccountMembership.objects.filter(account=account, role=Role.ADMIN).count() == 1:
        raise ConflictError("An account needs at least one admin.")
    membership.delete()
    audit_record(account=account, actor=actor, action="account.user_removed", target=username)


# --- detectors ------------------------------------------------------------------------------


def _check_region(region: str) -> None:
    if region not in settings.VIGIL_REGIONS:
        raise ServiceError(f"Unknown region {region!r}.")


@transaction.atomic
def detector_create(
    *,
    actor: Any,
    account: Account,
    region: str,
    enable: bool = True,
    finding_publishing_frequency: str | None = None,
    data_sources: dict[str, bool] | None = None,
    tags: dict[str, str] | None = None,
) -> Detector:
    access.require_role(actor, account, access.ADMIN_ROLES, what="create detectors")
    _check_region(region)
    administrator = access.administrator_of(account)
    frequency = finding_publishing_frequency or Detector.PublishingFrequency.SIX_HOURS
    if administrator is not None:
        # Members inherit the administrator's publishing frequency.
        admin_detector = Detector.objects.filter(account=administrator, region=region).first()
        frequency = admin_detector.finding_publishing_frequency if admin_detector else frequency
    if frequency not in Detector.PublishingFrequency.values:
        raise ServiceError(f"FindingPublishingFrequency must be one of {', '.join(Detector.PublishingFrequency.values)}.")
    if Detector.objects.filter(account=account, region=region).exists():
        raise ConflictError(f"Account {account.aws_account_id} already has a detector in {region}.")
    try:
        with transaction.atomic():
            detector = Detector.objects.create(
                account=account,
                region=region,
                status=Detector.Status.ENABLED if enable else Detector.Status.SUSPENDED,
                finding_publishing_frequency=frequency,
                tags=tags or {},
                **_data_source_fields(data_sources or {}),
            )
    except IntegrityError as exc:
        raise ConflictError(f"Account {account.aws_account_id} already has a detector in {region}.") from exc
    audit_record(account=account, actor=actor, action="detector.created", target=detector.detector_id, region=region)
    return detector


DATA_SOURCE_FIELDS = {
    "cloudtrail": "cloudtrail_enabled",
    "s3_data_events": "s3_data_events_enabled",
    "flow_logs": "flow_logs_enabled",
    "dns_logs": "dns_logs_enabled",
}


def _data_source_fields(data_sources: dict[str, bool]) -> dict[str, bool]:
    unknown = set(data_sources) - set(DATA_SOURCE_FIELDS)
    if unknown:
        raise ServiceError(f"Unknown data source(s): {', '.join(sorted(unknown))}.")
    return {DATA_SOURCE_FIELDS[name]: bool(value) for name, value in data_sources.items()}


def _require_no_open_members(detector: Detector, what: str) -> None:
    if Member.objects.filter(administrator=detector.account, relationship_status__in=OPEN_MEMBER_STATUSES).exists():
        raise ConflictError(
            f"Account {detector.account.aws_account_id} is an administrator: disassociate and delete its members before you {what}."
        )


@transaction.atomic
def detector_update(
    *,
    actor: Any,
    detector: Detector,
    finding_publishing_frequency: str | None = None,
    data_sources: dict[str, bool] | None = None,
    tags: dict[str, str] | None = None,
) -> Detector:
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="change detector settings")
    changed: dict[str, Any] = {}
    if finding_publishing_frequency is not None and finding_publishing_frequency != detector.finding_publishing_frequency:
        if finding_publishing_frequency not in Detector.PublishingFrequency.values:
            raise ServiceError(
                f"FindingPublishingFrequency must be one of {', '.join(Detector.PublishingFrequency.values)}."
            )
        if access.administrator_of(detector.account) is not None:
            raise PermissionDeniedError("This account is a member: its administrator sets the publishing frequency.")
        detector.finding_publishing_frequency = finding_publishing_frequency
        changed["finding_publishing_frequency"] = finding_publishing_frequency
        # Members follow their administrator's frequency in the same region.
        member_ids = Member.objects.filter(
            administrator=detector.account, relationship_status__in=ASSOCIATED_STATUSES
        ).values("member_id")
        Detector.objects.filter(account_id__in=member_ids, region=detector.region).update(
            finding_publishing_frequency=finding_publishing_frequency, updated_at=timezone.now()
        )
    for field, value in _data_source_fields(data_sources or {}).items():
        if getattr(detector, field) != value:
            setattr(detector, field, value)
            changed[field] = value
    if tags is not None:
        detector.tags = tags
        changed["tags"] = tags
    detector.save()
    if changed:
        audit_record(account=detector.account, actor=actor, action="detector.updated", target=detector.detector_id, **changed)
    return detector


@transaction.atomic
def detector_suspend(*, actor: Any, detector: Detector) -> Detector:
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="suspend detectors")
    _require_no_open_members(detector, "suspend its detector")
    detector.status = Detector.Status.SUSPENDED
    detector.save(update_fields=["status", "updated_at"])
    audit_record(account=detector.account, actor=actor, action="detector.suspended", target=detector.detector_id,
                 region=detector.region)
    return detector


@transaction.atomic
def detector_resume(*, actor: Any, detector: Detector) -> Detector:
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="resume detectors")
    detector.status = Detector.Status.ENABLED
    detector.save(update_fields=["status", "updated_at"])
    audit_record(account=detector.account, actor=actor, action="detector.resumed", target=detector.detector_id,
                 region=detector.region)
    return detector


@transaction.atomic
def detector_delete(*, actor: Any, detector: Detector, confirm: str) -> None:
    """Disable: delete the detector and everything it found. `confirm` must repeat the detector id."""
    access.require_role(actor, detector.account, access.ADMIN_ROLES, what="disable detectors")
    if confirm.strip() != detector.detector_id:
        raise ServiceError("To disable, type the detector id to confirm: its findings are deleted for good.")
    _require_no_open_members(detector, "disable its detector")
    audit_record(account=detector.account, actor=actor, action="detector.deleted", target=detector.detector_id,
                 region=detector.region)
    detector.delete()


# --- administrator side ---------------------------------------------------------------------


@transaction.atomic
def member_create(*, actor: Any, administrator: Account, account_details: list[dict[str, str]]) -> list[Unprocessed]:
    """GuardDuty CreateMembers: record accounts (id + email) as members in status Created."""
    access.require_role(actor, administrator, access.ADMIN_ROLES, what="add member accounts")
    _check_bulk([d.get("account_id", "") for d in account_details])
    _lock_accounts(administrator)
    if _is_member(administrator):
        raise ConflictError(f"Account {administrator.aws_account_id} is a member of another administrator and cannot have members.")
    unprocessed: list[Unprocessed] = []
    existing = Member.objects.filter(administrator=administrator).count()
    for detail in account_details:
        account_id = (detail.get("account_id") or "").strip()
        email = (detail.get("email") or "").strip()
        reason = _member_create_refusal(administrator, account_id, email)
        if reason is None and existing >= settings.VIGIL_MAX_MEMBERS_PER_ADMINISTRATOR:
            reason = f"The administrator already has the maximum of {settings.VIGIL_MAX_MEMBERS_PER_ADMINISTRATOR} members."
        if reason:
            unprocessed.append(Unprocessed(account_id, reason))
            continue
        member_account, _ = Account.objects.get_or_create(
            aws_account_id=account_id, defaults={"name": f"Account {account_id}", "email": email}
        )
        if _is_administrator(member_account):
            unprocessed.append(Unprocessed(account_id, "The account is an administrator of other accounts."))
            continue
        record, created = Member.objects.get_or_create(
            administrator=administrator, member=member_account, defaults={"email": email}
        )
        if not created:
            if record.relationship_status in (RelationshipStatus.REMOVED, RelationshipStatus.RESIGNED):
                record.email = email
                record.relationship_status = RelationshipStatus.CREATED
                record.save(update_fields=["email", "relationship_status", "updated_at"])
            else:
                unprocessed.append(Unprocessed(account_id, f"The account is already a member ({record.relationship_status})."))
                continue
        existing += 1
        audit_record(account=administrator, actor=actor, action="member.created", target=account_id, email=email)
    return unprocessed


def _member_create_refusal(administrator: Account, account_id: str, email: str) -> str | None:
    if not ACCOUNT_ID_RE.match(account_id):
        return "The account id must be 12 digits."
    if account_id == administrator.aws_account_id:
        return "An account cannot be a member of itself."
    try:
        validate_email(email)
    except ValidationError:
        return "The email address is not valid."
    if len(email) > 64:
        return "The email address is longer than 64 characters."
    return None


def _member_records(administrator: Account, account_ids: list[str]) -> tuple[dict[str, Member], list[Unprocessed]]:
    _check_bulk(account_ids)
    records = {
        m.member.aws_account_id: m
        for m in Member.objects.select_related("member").filter(
            administrator=administrator, member__aws_account_id__in=account_ids
        )
    }
    missing = [Unprocessed(a, "The account is not a member of this administrator.") for a in account_ids if a not in records]
    return records, missing


@transaction.atomic
def member_invite(*, actor: Any, administrator: Account, account_ids: list[str], message: str = "") -> list[Unprocessed]:
    """GuardDuty InviteMembers. The invitee's email is verified asynchronously, then the
    relationship becomes Invited (or EmailVerificationFailed)."""
    from accounts.tasks import member_email_verify_task

    access.require_role(actor, administrator, access.ADMIN_ROLES, what="invite member accounts")
    records, unprocessed = _member_records(administrator, account_ids)
    for account_id, record in records.items():
        if record.relationship_status in ASSOCIATED_STATUSES:
            unprocessed.append(Unprocessed(account_id, "The account is already associated with this administrator."))
            continue
        record.relationship_status = RelationshipStatus.EMAIL_VERIFICATION_IN_PROGRESS
        record.invitation_id = new_invitation_id()
        record.invitation_message = message[:1000]
        record.invited_at = timezone.now()
        record.save()
        audit_record(account=administrator, actor=actor, action="member.invited", target=account_id)
        member_email_verify_task.delay_on_commit(record.id)
    return unprocessed


@transaction.atomic
def member_email_verify(*, member_record_id: int) -> Member | None:
    """Check the invitee's email against the account's registered address (set it when none)."""
    record = Member.objects.select_for_update().select_related("member", "administrator").filter(id=member_record_id).first()
    if record is None or record.relationship_status != RelationshipStatus.EMAIL_VERIFICATION_IN_PROGRESS:
        return record
    registered = record.member.email
    if not registered:
        record.member.email = record.email
        record.member.save(update_fields=["email"])
    if not registered or registered.lower() == record.email.lower():
        record.relationship_status = RelationshipStatus.INVITED
    else:
        record.relationship_status = RelationshipStatus.EMAIL_VERIFICATION_FAILED
    record.save(update_fields=["relationship_status", "updated_at"])
    audit_record(account=record.administrator, actor=None, action="member.email_verified", target=record.member.aws_account_id,
                 result=record.relationship_status)
    return record


def _bulk_transition(
    *, actor: Any, administrator: Account, account_ids: list[str], allowed_from: tuple[str, ...],
    to: str | None, action: str, what: str,
) -> list[Unprocessed]:
    access.require_role(actor, administrator, access.ADMIN_ROLES, what=what)
    records, unprocessed = _member_records(administrator, account_ids)
    for account_id, record in records.items():
        if record.relationship_status not in allowed_from:
            unprocessed.append(Unprocessed(account_id, f"Not possible while the member is {record.relationship_status}."))
            continue
        if to is None:
            record.delete()
        else:
            record.relationship_status = to
            record.save(update_fields=["relationship_status", "updated_at"])
        audit_record(account=administrator, actor=actor, action=action, target=account_id)
    return unprocessed


@transaction.atomic
def member_disassociate(*, actor: Any, administrator: Account, account_ids: list[str]) -> list[Unprocessed]:
    """GuardDuty DisassociateMembers: the administrator lets members go (status Removed)."""
    return _bulk_transition(
        actor=actor, administrator=administrator, account_ids=account_ids,
        allowed_from=(RelationshipStatus.ENABLED, RelationshipStatus.DISABLED, RelationshipStatus.INVITED,
                      RelationshipStatus.EMAIL_VERIFICATION_IN_PROGRESS, RelationshipStatus.EMAIL_VERIFICATION_FAILED,
                      RelationshipStatus.CREATED),
        to=RelationshipStatus.REMOVED, action="member.disassociated", what="disassociate members",
    )


@transaction.atomic
def member_delete(*, actor: Any, administrator: Account, account_ids: list[str]) -> list[Unprocessed]:
    """GuardDuty DeleteMembers: only members that are not associated can be deleted."""
    return _bulk_transition(
        actor=actor, administrator=administrator, account_ids=account_ids,
        allowed_from=tuple(s for s in RelationshipStatus.values if s not in ASSOCIATED_STATUSES),
        to=None, action="member.deleted", what="delete members",
    )


@transaction.atomic
def member_monitoring_stop(*, actor: Any, administrator: Account, account_ids: list[str]) -> list[Unprocessed]:
    return _bulk_transition(
        actor=actor, administrator=administrator, account_ids=account_ids,
        allowed_from=(RelationshipStatus.ENABLED,), to=RelationshipStatus.DISABLED,
        action="member.monitoring_stopped", what="stop monitoring members",
    )


@transaction.atomic
def member_monitoring_start(*, actor: Any, administrator: Account, account_ids: list[str]) -> list[Unprocessed]:
    return _bulk_transition(
        actor=actor, administrator=administrator, account_ids=account_ids,
        allowed_from=(RelationshipStatus.DISABLED,), to=RelationshipStatus.ENABLED,
        action="member.monitoring_started", what="start monitoring members",
    )


# --- member side ----------------------------------------------------------------------------


@transaction.atomic
def invitation_accept(*, actor: Any, member_account: Account, administrator_aws_id: str, invitation_id: str) -> Member:
    """GuardDuty AcceptAdministratorInvitation."""
    access.require_role(actor, member_account, access.ADMIN_ROLES, what="accept invitations")
    record = (
        Member.objects.select_related("administrator")
        .filter(member=member_account, administrator__aws_account_id=administrator_aws_id)
        .first()
    )
    if record is None or record.relationship_status != RelationshipStatus.INVITED:
        raise NotFoundError(f"No pending invitation from {administrator_aws_id}.")
    if invitation_id != record.invitation_id:
        raise ServiceError("The invitation id does not match the pending invitation.")
    if not member_account.detectors.exists():
        raise ConflictError("Create a detector in this account before accepting an invitation.")
    _lock_accounts(member_account, record.administrator)
    if _is_member(member_account):
        raise ConflictError("This account already has an administrator: disassociate from it first.")
    if _is_administrator(member_account):
        raise ConflictError("This account is an administrator of other accounts and cannot become a member.")
    if _is_member(record.administrator):
        raise ConflictError("The inviting account is itself a member of another administrator.")
    record.relationship_status = RelationshipStatus.ENABLED
    try:
        with transaction.atomic():
            record.save(update_fields=["relationship_status", "updated_at"])
    except IntegrityError as exc:  # lost a race with another acceptance
        raise ConflictError("This account already has an administrator: disassociate from it first.") from exc
    _sync_member_frequency(record)
    for account in (member_account, record.administrator):
        audit_record(account=account, actor=actor, action="invitation.accepted", target=member_account.aws_account_id,
                     administrator=administrator_aws_id)
    return record


def _sync_member_frequency(record: Member) -> None:
    for admin_detector in Detector.objects.filter(account=record.administrator):
        Detector.objects.filter(account=record.member, region=admin_detector.region).update(
            finding_publishing_frequency=admin_detector.finding_publishing_frequency
        )


def _invitation_records(member_account: Account, administrator_aws_ids: list[str]) -> tuple[list[Member], list[Unprocessed]]:
    _check_bulk(administrator_aws_ids)
    records = list(
        Member.objects.select_related("administrator").filter(
            member=member_account, administrator__aws_account_id__in=administrator_aws_ids
        )
    )
    found = {r.administrator.aws_account_id for r in records}
    return records, [Unprocessed(a, "No invitation from this account.") for a in administrator_aws_ids if a not in found]


@transaction.atomic
def invitation_decline(*, actor: Any, member_account: Account, administrator_aws_ids: list[str]) -> list[Unprocessed]:
    """GuardDuty DeclineInvitations: the invitation is refused; the administrator sees Resigned."""
    access.require_role(actor, member_account, access.ADMIN_ROLES, what="decline invitations")
    records, unprocessed = _invitation_records(member_account, administrator_aws_ids)
    for record in records:
        if record.relationship_status != RelationshipStatus.INVITED:
            unprocessed.append(Unprocessed(record.administrator.aws_account_id, "No pending invitation from this account."))
            continue
        record.relationship_status = RelationshipStatus.RESIGNED
        record.save(update_fields=["relationship_status", "updated_at"])
        for account in (member_account, record.administrator):
            audit_record(account=account, actor=actor, action="invitation.declined",
                         target=member_account.aws_account_id, administrator=record.administrator.aws_account_id)
    return unprocessed


@transaction.atomic
def invitation_delete(*, actor: Any, member_account: Account, administrator_aws_ids: list[str]) -> list[Unprocessed]:
    """GuardDuty DeleteInvitations: the member removes invitations it does not want to see."""
    access.require_role(actor, member_account, access.ADMIN_ROLES, what="delete invitations")
    records, unprocessed = _invitation_records(member_account, administrator_aws_ids)
    for record in records:
        if record.relationship_status in ASSOCIATED_STATUSES:
            unprocessed.append(Unprocessed(record.administrator.aws_account_id,
                                           "The invitation was accepted: disassociate instead."))
            continue
        if record.relationship_status in (RelationshipStatus.INVITED, RelationshipStatus.EMAIL_VERIFICATION_IN_PROGRESS):
            record.relationship_status = RelationshipStatus.RESIGNED
        record.invitation_id = ""
        record.save(update_fields=["relationship_status", "invitation_id", "updated_at"])
        audit_record(account=member_account, actor=actor, action="invitation.deleted",
                     target=record.administrator.aws_account_id)
    return unprocessed


@transaction.atomic
def administrator_disassociate(*, actor: Any, member_account: Account) -> Member:
    """GuardDuty DisassociateFromAdministratorAccount: the member leaves (status Resigned)."""
    access.require_role(actor, member_account, access.ADMIN_ROLES, what="leave the administrator")
    record = (
        Member.objects.select_related("administrator")
        .filter(member=member_account, relationship_status__in=ASSOCIATED_STATUSES)
        .first()
    )
    if record is None:
        raise NotFoundError("This account has no administrator.")
    record.relationship_status = RelationshipStatus.RESIGNED
    record.save(update_fields=["relationship_status", "updated_at"])
    for account in (member_account, record.administrator):
        audit_record(account=account, actor=actor, action="administrator.disassociated",
                     target=member_account.aws_account_id, administrator=record.administrator.aws_account_id)
    return record
