"""Triage writes shared by the console and the GuardDuty-compatible API: archive, unarchive, feedback.

GuardDuty's rules (accounts.access): only the account that manages a finding's account (its
administrator while associated, else itself) archives; members cannot archive even their own
findings. Feedback is allowed to anyone with a triage role in the finding's account or its manager.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from console.errors import PermissionDeniedError, ServiceError
from findings.models import Feedback, Finding


def _accounts(findings: Iterable[Finding]) -> dict[int, Any]:
    return {f.account_id: f.account for f in findings}


@transaction.atomic
def findings_set_archived(*, actor: Any, findings: list[Finding], archived: bool) -> int:
    """Archive (or unarchive) findings the actor manages; all or nothing. Returns how many changed."""
    for account in _accounts(findings).values():
        access.require_manager_role(actor, account, access.TRIAGE_ROLES,
                                    what="archive findings" if archived else "unarchive findings")
    ids = [f.id for f in findings if f.archived != archived]
    if ids:
        # Unarchived, a finding is active again: no longer suppressed (its later occurrences are
        # published) and updated now, so the S3 export picks it up (GuardDuty exports a finding
        # once it is unarchived).
        reactivated = {} if archived else {"suppressed": False, "updated_at": timezone.now()}
        Finding.objects.filter(id__in=ids).update(archived=archived, **reactivated)
    for account in _accounts(findings).values():
        changed = [f.finding_id for f in findings if f.account_id == account.id and f.id in set(ids)]
        if changed:
            audit_record(account=account, actor=actor, action="finding.archived" if archived else "finding.unarchived",
                         target=changed[0] if len(changed) == 1 else f"{len(changed)} findings",
                         finding_ids=changed[:50])
    return len(ids)


@transaction.atomic
def findings_set_feedback(*, actor: Any, findings: list[Finding], feedback: str, comments: str = "") -> int:
    if feedback not in (Feedback.USEFUL, Feedback.NOT_USEFUL):
        raise ServiceError("Feedback must be USEFUL or NOT_USEFUL.")
    for account in _accounts(findings).values():
        roles = {access.role_in(actor, account), access.role_in(actor, access.managing_account(account))}
        if not roles & set(access.TRIAGE_ROLES):
            raise PermissionDeniedError(f"Your role in account {account.aws_account_id} cannot give feedback.")
    Finding.objects.filter(id__in=[f.id for f in findings]).update(feedback=feedback)
    for account in _accounts(findings).values():
        audit_record(account=account, actor=actor, action="finding.feedback", target=feedback,
                     finding_ids=[f.finding_id for f in findings if f.account_id == account.id][:50],
                     comments=comments[:1000])
    if feedback == Feedback.NOT_USEFUL:
        # Closing the loop: repeated "not useful" feedback proposes a suppression rule.
        from findings.rules import proposals_consider

        for finding in findings:
            proposals_consider(finding=finding)
    return len(findings)
