"""Reads for findings, always scoped to the accounts the acting person may see."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from accounts import access
from console.errors import NotFoundError
from findings.models import Finding


def finding_list(
    *,
    actor: Any,
    account_id: int | None = None,
    region: str | None = None,
    finding_type: str | None = None,
    severity_levels: list[int] | None = None,
    archived: bool | None = False,
    resource_id: str | None = None,
) -> QuerySet[Finding]:
    findings = Finding.objects.filter(account__in=access.accounts_visible_to(user=actor))
    if account_id is not None:
        findings = findings.filter(account_id=account_id)
    if region:
        findings = findings.filter(region=region)
    if finding_type:
        findings = findings.filter(type=finding_type)
    if severity_levels:
        findings = findings.filter(severity_level__in=severity_levels)
    if archived is not None:
        findings = findings.filter(archived=archived)
    if resource_id:
        findings = findings.filter(resource_id=resource_id)
    return findings.select_related("account", "detector").order_by("-severity", "-last_seen", "-id")


def finding_get(*, actor: Any, finding_id: str) -> Finding:
    finding = finding_list(actor=actor, archived=None).filter(finding_id=finding_id).first()
    if finding is None:
        raise NotFoundError("No such finding.")
    return finding
