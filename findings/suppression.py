"""Suppression at detection time: a new finding that matches one of its administrator's ARCHIVE
rules is stored archived and never published (GuardDuty's suppression rules; not retroactive).

Registered as a hook of findings.services.findings_upsert_many (see FindingsConfig.ready).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import F
from django.utils import timezone

from accounts.models import ASSOCIATED_STATUSES, Account, Member
from findings.catalog import FINDING_TYPES
from findings.criteria import CriteriaError, criteria_match
from findings.rules_models import SavedFilter


def _managers(account_ids: set[int]) -> dict[int, int]:
    """account id -> id of the account that manages it (its administrator, else itself)."""
    managers = {a: a for a in account_ids}
    for member_id, admin_id in Member.objects.filter(
        member_id__in=account_ids, relationship_status__in=ASSOCIATED_STATUSES
    ).values_list("member_id", "administrator_id"):
        managers[member_id] = admin_id
    return managers


def _rules_by_manager(manager_ids: set[int]) -> dict[int, list[SavedFilter]]:
    rules: dict[int, list[SavedFilter]] = {m: [] for m in manager_ids}
    for rule in SavedFilter.objects.filter(account_id__in=manager_ids, action=SavedFilter.Action.ARCHIVE).order_by(
        "rank", "name"
    ):
        rules[rule.account_id].append(rule)
    return rules


def draft_values(draft: Any, *, aws_account_id: str, now: Any = None) -> dict[str, Any]:
    """A draft's criteria values, as the stored finding will have them on creation."""
    from findings.services import filter_columns

    now = now or timezone.now()
    finding_type = FINDING_TYPES.get(draft.type)
    return {
        "account__aws_account_id": aws_account_id,
        "finding_id": "",
        "region": draft.region,
        "type": draft.type,
        "title": draft.title,
        "description": draft.description,
        "severity": float(draft.severity),
        "severity_level": max(1, min(10, math.floor(draft.severity))),
        "created_at": now,
        "updated_at": now,
        "resource_type": (draft.resource or {}).get("resourceType") or (finding_type.resource_type if finding_type else ""),
        "archived": False,
        "count": draft.count,
        "first_seen": draft.first_seen,
        "last_seen": draft.last_seen,
        "feedback": "",
        **filter_columns(draft.resource or {}, draft.service or {}),
    }


def matching_rule(values: Mapping[str, Any], rules: Sequence[SavedFilter]) -> SavedFilter | None:
    """The first rule (by rank) whose criteria the finding satisfies."""
    for rule in rules:
        try:
            if criteria_match(rule.criteria, values):
                return rule
        except CriteriaError:
            continue  # a rule saved before a criteria change; never block detection on it
    return None


def is_suppressed(finding_fields: Mapping[str, Any], account: Account) -> bool:
    """Would a finding with these criteria values be archived on creation in `account`?"""
    manager = _managers({account.id})[account.id]
    return matching_rule(finding_fields, _rules_by_manager({manager})[manager]) is not None


def suppression_hook(drafts: Sequence[Any]) -> list[bool]:
    """findings_upsert_many hook: which drafts to store archived."""
    if not drafts:
        return []
    account_ids = {d.account_id for d in drafts}
    managers = _managers(account_ids)
    rules = _rules_by_manager(set(managers.values()))
    if not any(rules.values()):
        return [False] * len(drafts)
    aws_ids = dict(Account.objects.filter(id__in=account_ids).values_list("id", "aws_account_id"))
    now = timezone.now()
    result: list[bool] = []
    hits: dict[int, int] = {}
    for draft in drafts:
        rule = matching_rule(draft_values(draft, aws_account_id=aws_ids.get(draft.account_id, ""), now=now),
                             rules[managers[draft.account_id]])
        result.append(rule is not None)
        if rule is not None:
            hits[rule.pk] = hits.get(rule.pk, 0) + 1
    for pk, n in hits.items():
        SavedFilter.objects.filter(pk=pk).update(suppressed_count=F("suppressed_count") + n)
    return result
