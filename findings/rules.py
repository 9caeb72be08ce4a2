"""Saved filters and suppression rules (GuardDuty's Filter), their preview, and the feedback loop
that proposes a suppression rule after repeated "not useful" feedback.

Rules belong to the account that manages the findings (the administrator while associated), so
creating, changing and deleting one needs an admin or analyst role there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import ASSOCIATED_STATUSES, Account, Member
from console.errors import ConflictError, NotFoundError, ServiceError
from findings import criteria as fc
from findings.models import Feedback, Finding
from findings.rules_models import SavedFilter, SuppressionProposal

MAX_FILTERS = 100  # GuardDuty: 100 filters per account and Region, saved views and rules together
# Columns that, shared by every "not useful" finding of a type, narrow a proposed rule.
NARROWING = [
    ("resource.instanceDetails.instanceId", "instance_id"),
    ("resource.accessKeyDetails.accessKeyId", "access_key_id"),
    ("resource.s3BucketDetails.name", "bucket_name"),
    ("service.action.networkConnectionAction.remoteIpDetails.ipAddressV4", "remote_ip"),
    ("service.additionalInfo.threatListName", "threat_list_name"),
]


def domain_account_ids(manager: Account) -> list[int]:
    """The manager and its associated members: where its rules apply."""
    members = Member.objects.filter(administrator=manager, relationship_status__in=ASSOCIATED_STATUSES)
    return [manager.id, *members.values_list("member_id", flat=True)]


def filter_list(*, actor: Any, action: str | None = None) -> QuerySet[SavedFilter]:
    rows = SavedFilter.objects.filter(account__in=access.accounts_visible_to(user=actor)).select_related("account")
    if action:
        rows = rows.filter(action=action)
    return rows.order_by("account__aws_account_id", "rank", "name")


def filter_get(*, actor: Any, pk: int) -> SavedFilter:
    found = filter_list(actor=actor).filter(pk=pk).first()
    if found is None:
        raise NotFoundError("No such filter.")
    return found


def filter_preview(*, actor: Any, account: Account, criteria: Mapping[str, Any]) -> int:
    """How many stored findings the rule matches among the findings it would govern."""
    if not fc.validate(criteria, allow_matches=True)["Criterion"]:
        raise ServiceError("A filter needs at least one criterion.")
    manager = access.managing_account(account)
    q = fc.criteria_q(criteria, allow_matches=True)
    return Finding.objects.filter(account_id__in=domain_account_ids(manager)).filter(q).filter(
        account__in=access.accounts_visible_to(user=actor)
    ).count()


def _validate(*, name: str, description: str, action: str, rank: int, criteria: Mapping[str, Any]) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z0-9._-]{3,64}", name or ""):
        raise ServiceError("A filter name is 3 to 64 characters: letters, digits, '.', '_' and '-'.")
    if len(description or "") > 512:
        raise ServiceError("The description is at most 512 characters.")
    if action not in SavedFilter.Action.values:
        raise ServiceError("The action is NOOP (saved view) or ARCHIVE (suppression rule).")
    if not 1 <= int(rank) <= 100:
        raise ServiceError("The rank is between 1 and 100.")
    validated = fc.validate(criteria, allow_matches=True)
    if not validated["Criterion"]:
        raise ServiceError("A filter needs at least one criterion.")
    if action == SavedFilter.Action.ARCHIVE and set(validated["Criterion"]) <= {"service.archived"}:
        raise ServiceError("A suppression rule must say which findings to suppress.")
    return validated


@transaction.atomic
def filter_create(*, actor: Any, account: Account, name: str, criteria: Mapping[str, Any], description: str = "",
                  action: str = SavedFilter.Action.NOOP, rank: int = 1) -> SavedFilter:
    what = "manage suppression rules" if action == SavedFilter.Action.ARCHIVE else "manage saved filters"
    manager = access.require_manager_role(actor, account, access.TRIAGE_ROLES, what=what)
    validated = _validate(name=name, description=description, action=action, rank=rank, criteria=criteria)
    if SavedFilter.objects.filter(account=manager).count() >= MAX_FILTERS:
        raise ConflictError(f"An account has at most {MAX_FILTERS} filters.")
    try:
        with transaction.atomic():
            rule = SavedFilter.objects.create(account=manager, name=name, description=description, action=action,
                                              rank=int(rank), criteria=validated,
                                              created_by=actor if getattr(actor, "is_authenticated", False) else None)
    except IntegrityError as exc:
        raise ConflictError(f"A filter named {name} already exists.") from exc
    audit_record(account=manager, actor=actor, action="filter.created", target=name, filter_action=action,
                 criteria=validated)
    return rule


@transaction.atomic
def filter_update(*, actor: Any, saved_filter: SavedFilter, **changes: Any) -> SavedFilter:
    access.require_manager_role(actor, saved_filter.account, access.TRIAGE_ROLES, what="manage suppression rules")
    fields = {k: changes.get(k, getattr(saved_filter, k)) for k in ("name", "description", "action", "rank", "criteria")}
    validated = _validate(**fields)
    for key, value in {**fields, "criteria": validated}.items():
        setattr(saved_filter, key, value)
    try:
        with transaction.atomic():
            saved_filter.save()
    except IntegrityError as exc:
        raise ConflictError(f"A filter named {fields['name']} already exists.") from exc
    audit_record(account=saved_filter.account, actor=actor, action="filter.updated", target=saved_filter.name,
                 filter_action=saved_filter.action, criteria=validated)
    return saved_filter


@transaction.atomic
def filter_delete(*, actor: Any, saved_filter: SavedFilter) -> None:
    access.require_manager_role(actor, saved_filter.account, access.TRIAGE_ROLES, what="manage suppression rules")
    audit_record(account=saved_filter.account, actor=actor, action="filter.deleted", target=saved_filter.name,
                 filter_action=saved_filter.action, criteria=saved_filter.criteria)
    saved_filter.delete()


def criteria_from_finding(finding: Finding) -> dict[str, Any]:
    """"Suppress findings like this": the finding's type plus what identifies its resource or actor."""
    criterion: dict[str, Any] = {"type": {"Equals": [finding.type]}}
    for attribute, column in NARROWING:
        value = getattr(finding, column)
        if value:
            criterion[attribute] = {"Equals": [value]}
            break
    return {"Criterion": criterion}


# --- feedback -> proposed suppression rules ---------------------------------------------------

def _criteria_key(criteria: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(criteria, sort_keys=True).encode()).hexdigest()


def proposals_consider(*, finding: Finding) -> SuppressionProposal | None:
    """After a NOT_USEFUL feedback: propose the rule that would have hidden this kind of finding,
    once enough findings of the type were judged not useful. Never re-proposes a dismissed rule."""
    manager = access.managing_account(finding.account)
    not_useful = Finding.objects.filter(account_id__in=domain_account_ids(manager), type=finding.type,
                                        feedback=Feedback.NOT_USEFUL)
    count = not_useful.count()
    if count < getattr(settings, "VIGIL_SUPPRESSION_PROPOSAL_THRESHOLD", 3):
        return None
    criterion: dict[str, Any] = {"type": {"Equals": [finding.type]}}
    for attribute, column in NARROWING:
        values = set(not_useful.values_list(column, flat=True).distinct()[:2])
        if len(values) == 1 and "" not in values:
            criterion[attribute] = {"Equals": [values.pop()]}
            break
    criteria = {"Criterion": criterion}
    key = _criteria_key(criteria)
    proposal, created = SuppressionProposal.objects.get_or_create(
        account=manager, criteria_key=key,
        defaults={"finding_type": finding.type, "criteria": criteria, "not_useful_count": count},
    )
    if not created and proposal.status == SuppressionProposal.Status.PROPOSED:
        SuppressionProposal.objects.filter(pk=proposal.pk).update(not_useful_count=count)
    return proposal


def proposal_list(*, actor: Any) -> QuerySet[SuppressionProposal]:
    return SuppressionProposal.objects.filter(
        account__in=access.accounts_visible_to(user=actor), status=SuppressionProposal.Status.PROPOSED
    ).select_related("account")


def proposal_get(*, actor: Any, pk: int) -> SuppressionProposal:
    found = SuppressionProposal.objects.filter(account__in=access.accounts_visible_to(user=actor), pk=pk).first()
    if found is None:
        raise NotFoundError("No such proposal.")
    return found


def _proposal_name(proposal: SuppressionProposal) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", proposal.finding_type).strip("-")
    return f"auto-{base}"[:57] + f"-{proposal.pk % 100000:05d}"


@transaction.atomic
def proposal_decide(*, actor: Any, proposal: SuppressionProposal, accept: bool) -> SavedFilter | None:
    """An administrator accepts (creates the ARCHIVE rule) or dismisses a proposal."""
    access.require_manager_role(actor, proposal.account, access.ADMIN_ROLES, what="decide on proposed rules")
    if proposal.status != SuppressionProposal.Status.PROPOSED:
        raise ConflictError(f"This proposal was already {proposal.status.lower()}.")
    rule = None
    if accept:
        rule = filter_create(actor=actor, account=proposal.account, name=_proposal_name(proposal),
                             criteria=proposal.criteria, action=SavedFilter.Action.ARCHIVE,
                             description=f"Proposed after {proposal.not_useful_count} findings were marked not useful.")
    proposal.status = SuppressionProposal.Status.ACCEPTED if accept else SuppressionProposal.Status.DISMISSED
    proposal.saved_filter = rule
    proposal.decided_by = actor
    proposal.decided_at = timezone.now()
    proposal.save(update_fields=["status", "saved_filter", "decided_by", "decided_at"])
    audit_record(account=proposal.account, actor=actor,
                 action="proposal.accepted" if accept else "proposal.dismissed", target=proposal.finding_type)
    return rule
