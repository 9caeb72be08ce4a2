"""Reads for lists, always scoped through accounts.access: a person sees the lists of the accounts
they can see, and members see (read only) the lists of their administrator, which apply to them."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts import access
from accounts.models import ASSOCIATED_STATUSES, Account, Member
from console.errors import NotFoundError
from intel.matching import IndicatorHit
from intel.models import IntelSet


def owner_ids_visible_to(actor: Any) -> set[int]:
    visible = set(access.accounts_visible_to(user=actor).values_list("id", flat=True))
    admins = Member.objects.filter(member_id__in=visible, relationship_status__in=ASSOCIATED_STATUSES).values_list(
        "administrator_id", flat=True
    )
    return visible | set(admins)


def intel_set_list(*, actor: Any, account: Account, region: str | None = None, kind: str | None = None) -> QuerySet[IntelSet]:
    """The lists that apply to `account` (those of the account managing it), for a visible account."""
    access.access_account_by_id(actor, account.id)
    manager = access.managing_account(account)
    qs = (
        IntelSet.objects.filter(account=manager)
        .exclude(status=IntelSet.Status.DELETED)
        .select_related("account", "active_version")
        .defer("upload", "active_version__compiled")
    )
    if region:
        qs = qs.filter(region=region)
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("region", "kind", "slot")


def intel_set_get(*, actor: Any, set_id: str) -> IntelSet:
    intel_set = (
        IntelSet.objects.exclude(status=IntelSet.Status.DELETED)
        .select_related("account", "active_version")
        .defer("upload", "active_version__compiled")
        .filter(set_id=set_id, account_id__in=owner_ids_visible_to(actor))
        .first()
    )
    if intel_set is None:
        raise NotFoundError("No such list.")
    return intel_set


def indicator_check(*, actor: Any, account: Account, region: str, value: str) -> dict[str, Any]:
    """Which lists (threat lists in force, built-in feeds, the trusted list) contain `value`."""
    from intel.services import matcher_for

    access.access_account_by_id(actor, account.id)
    matcher = matcher_for(account_id=account.id, region=region)
    hits, trusted = matcher.check(value)
    return {
        "value": value,
        "hits": [_hit_dict(h) for h in hits],
        "trusted": trusted,
        "trusted_list": matcher.trusted_name if trusted else "",
        "finding": bool(hits) and not trusted,
    }


def _hit_dict(hit: IndicatorHit) -> dict[str, Any]:
    return {"list_name": hit.list_name, "source": hit.source, "category": hit.category,
            "threat_names": list(hit.threat_names)}
