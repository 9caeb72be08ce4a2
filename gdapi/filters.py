"""GuardDuty's CreateFilter/GetFilter/UpdateFilter/DeleteFilter/ListFilters over the console's saved
filters and suppression rules (findings.rules): one model, one set of services, one suppression
hook, whichever surface a filter is created from.

Vigil's filters belong to the managing account (the administrator for its members) and apply in
every region, as its associations do; the region of the detector in the request is accepted and
checked, not stored.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from accounts import access
from accounts.events import audit_record
from accounts.models import Account
from console.errors import NotFoundError, ServiceError
from findings import rules
from findings.rules import MAX_FILTERS
from findings.rules_models import SavedFilter


def _check_region(region: str) -> None:
    if region not in settings.VIGIL_REGIONS:
        raise ServiceError(f"Unknown region {region!r}.")


@transaction.atomic
def filter_create(*, actor: Any, account: Account, region: str, name: str, criteria: dict[str, Any],
                  action: str = SavedFilter.Action.NOOP, rank: int | None = None, description: str = "",
                  tags: dict[str, str] | None = None) -> SavedFilter:
    _check_region(region)
    manager = access.managing_account(account)
    rank = rank or SavedFilter.objects.filter(account=manager).count() + 1
    item = rules.filter_create(actor=actor, account=account, name=name, criteria=criteria, description=description,
                               action=action, rank=min(rank, MAX_FILTERS))
    if tags:
        item.tags = tags
        item.save(update_fields=["tags"])
    return item


def filter_list(*, actor: Any, account: Account, region: str) -> QuerySet[SavedFilter]:
    """The filters that apply to `account` (its manager's), for a visible account."""
    _check_region(region)
    access.access_account_by_id(actor, account.id)
    return SavedFilter.objects.filter(account=access.managing_account(account)).order_by("rank", "name", "id")


def filter_get(*, actor: Any, account: Account, region: str, name: str) -> SavedFilter:
    item = filter_list(actor=actor, account=account, region=region).filter(name=name).first()
    if item is None:
        raise NotFoundError(f"No filter named {name}.")
    return item


def _require_manager(actor: Any, account: Account) -> None:
    """Refuse a member's people with GuardDuty's reason (only the administrator manages filters)."""
    access.require_manager_role(actor, account, access.TRIAGE_ROLES, what="manage filters and suppression rules")


@transaction.atomic
def filter_update(*, actor: Any, account: Account, region: str, name: str, description: str | None = None,
                  action: str | None = None, rank: int | None = None, criteria: dict[str, Any] | None = None,
                  tags: dict[str, str] | None = None) -> SavedFilter:
    _require_manager(actor, account)
    item = filter_get(actor=actor, account=account, region=region, name=name)
    changes = {k: v for k, v in {"description": description, "action": action, "rank": rank,
                                 "criteria": criteria}.items() if v is not None}
    if changes:
        item = rules.filter_update(actor=actor, saved_filter=item, **changes)
    if tags is not None and tags != item.tags:
        item.tags = tags
        item.save(update_fields=["tags", "updated_at"])
        audit_record(account=item.account, actor=actor, action="filter.updated", target=item.name, tags=tags)
    return item


@transaction.atomic
def filter_delete(*, actor: Any, account: Account, region: str, name: str) -> None:
    _require_manager(actor, account)
    rules.filter_delete(actor=actor, saved_filter=filter_get(actor=actor, account=account, region=region, name=name))
