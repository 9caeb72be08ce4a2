"""Saved filters and suppression rules (GuardDuty's Filter): writes, reads, and the suppression
hook that findings.services calls before storing new findings.

Rules (GuardDuty, issue 8): a filter belongs to the managing account (the administrator for its
members) and region; only that account's admins and analysts change filters; members read them;
at most 100 per account and region. ARCHIVE filters archive matching *new* findings (not
retroactive; ArchiveFindings does that on request).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import Account
from console.errors import ConflictError, NotFoundError, ServiceError
from gdapi.criteria import criteria_match, criteria_q
from gdapi.models import Filter

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,64}$")
MAX_FILTERS = 100
MANAGE = "manage filters and suppression rules"


def _validate(*, name: str | None = None, action: str | None = None, rank: int | None = None,
              criteria: dict[str, Any] | None = None, description: str | None = None) -> None:
    if name is not None and not NAME_RE.match(name):
        raise ServiceError("A filter name is 3 to 64 letters, digits, periods, hyphens or underscores.")
    if action is not None and action not in Filter.Action.values:
        raise ServiceError("A filter's action is NOOP (saved filter) or ARCHIVE (suppression rule).")
    if rank is not None and not 1 <= rank <= MAX_FILTERS:
        raise ServiceError(f"A filter's rank is between 1 and {MAX_FILTERS}.")
    if description is not None and len(description) > 512:
        raise ServiceError("A filter's description is at most 512 characters.")
    if criteria is not None:
        if not (criteria.get("Criterion") or {}):
            raise ServiceError("A filter needs at least one criterion.")
        criteria_q(criteria, allow_matches=True)  # compiles, or says what is wrong


@transaction.atomic
def filter_create(*, actor: Any, account: Account, region: str, name: str, criteria: dict[str, Any],
                  action: str = Filter.Action.NOOP, rank: int | None = None, description: str = "",
                  tags: dict[str, str] | None = None) -> Filter:
    manager = access.require_manager_role(actor, account, access.TRIAGE_ROLES, what=MANAGE)
    if region not in settings.VIGIL_REGIONS:
        raise ServiceError(f"Unknown region {region!r}.")
    _validate(name=name, action=action, rank=rank, criteria=criteria, description=description)
    existing = Filter.objects.select_for_update().filter(account=manager, region=region)
    count = existing.count()
    if count >= MAX_FILTERS:
        raise ConflictError(f"Account {manager.aws_account_id} already has {MAX_FILTERS} filters in {region} (the limit).")
    try:
        with transaction.atomic():
            item = Filter.objects.create(account=manager, region=region, name=name, description=description,
                                         action=action, rank=rank or count + 1, criteria=criteria, tags=tags or {},
                                         created_by=actor if getattr(actor, "is_authenticated", False) else None)
    except IntegrityError as exc:
        raise ConflictError(f"A filter named {name} already exists in {region}.") from exc
    audit_record(account=manager, actor=actor, action="filter.created", target=name, region=region,
                 filter_action=action, criteria=criteria)
    return item


def _for_manage(actor: Any, account: Account, region: str, name: str) -> Filter:
    manager = access.require_manager_role(actor, account, access.TRIAGE_ROLES, what=MANAGE)
    item = Filter.objects.select_for_update().filter(account=manager, region=region, name=name).first()
    if item is None:
        raise NotFoundError(f"No filter named {name} in {region}.")
    return item


@transaction.atomic
def filter_update(*, actor: Any, account: Account, region: str, name: str, description: str | None = None,
                  action: str | None = None, rank: int | None = None, criteria: dict[str, Any] | None = None,
                  tags: dict[str, str] | None = None) -> Filter:
    item = _for_manage(actor, account, region, name)
    _validate(action=action, rank=rank, criteria=criteria, description=description)
    changed = {k: v for k, v in {"description": description, "action": action, "rank": rank, "criteria": criteria,
                                 "tags": tags}.items() if v is not None and getattr(item, k) != v}
    for key, value in changed.items():
        setattr(item, key, value)
    if changed:
        item.save()
        audit_record(account=item.account, actor=actor, action="filter.updated", target=name, region=region,
                     changed=changed)
    return item


@transaction.atomic
def filter_delete(*, actor: Any, account: Account, region: str, name: str) -> None:
    item = _for_manage(actor, account, region, name)
    audit_record(account=item.account, actor=actor, action="filter.deleted", target=name, region=region,
                 filter_action=item.action, criteria=item.criteria)
    item.delete()


def filter_list(*, actor: Any, account: Account, region: str) -> QuerySet[Filter]:
    """The filters that apply to `account` (its manager's) in `region`, for a visible account."""
    access.access_account_by_id(actor, account.id)
    return Filter.objects.filter(account=access.managing_account(account), region=region).order_by("rank", "name", "id")


def filter_get(*, actor: Any, account: Account, region: str, name: str) -> Filter:
    item = filter_list(actor=actor, account=account, region=region).filter(name=name).first()
    if item is None:
        raise NotFoundError(f"No filter named {name} in {region}.")
    return item


# --- suppression ----------------------------------------------------------------------------


def _draft_values(draft: Any, aws_account_id: str, now: Any) -> dict[str, Any]:
    from findings.catalog import FINDING_TYPES
    from findings.services import filter_columns

    known = FINDING_TYPES.get(draft.type)
    return {
        "account__aws_account_id": aws_account_id, "finding_id": "", "region": draft.region, "type": draft.type,
        "title": draft.title, "description": draft.description, "severity": float(draft.severity),
        "severity_level": max(1, min(10, math.floor(draft.severity))), "created_at": now, "updated_at": now,
        "resource_type": draft.resource.get("resourceType") or (known.resource_type if known else ""),
        "archived": False, "count": draft.count, "first_seen": draft.first_seen, "last_seen": draft.last_seen,
        "feedback": "", **filter_columns(draft.resource, draft.service),
    }


def suppression_hook(drafts: Sequence[Any]) -> list[bool]:
    """findings.services.SUPPRESSION_HOOKS: which new findings an ARCHIVE filter suppresses."""
    accounts = {a.id: a for a in Account.objects.filter(id__in={d.account_id for d in drafts})}
    rules: dict[tuple[int, str], list[Filter]] = {}
    now = timezone.now()
    result = []
    for draft in drafts:
        key = (draft.account_id, draft.region)
        if key not in rules:
            manager = access.managing_account(accounts[draft.account_id])
            rules[key] = list(Filter.objects.filter(account=manager, region=draft.region,
                                                    action=Filter.Action.ARCHIVE).order_by("rank", "id"))
        if not rules[key]:
            result.append(False)
            continue
        values = _draft_values(draft, accounts[draft.account_id].aws_account_id, now)
        result.append(any(criteria_match(f.criteria, values) for f in rules[key]))
    return result
