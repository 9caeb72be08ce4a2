"""Audit log rows: one function records one security-relevant action."""

from __future__ import annotations

from typing import Any

from accounts.models import Account, AuditEvent


def audit_record(*, account: Account, actor: Any, action: str, target: str = "", **details: Any) -> AuditEvent:
    is_user = getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        account=account,
        actor=actor if is_user else None,
        actor_label=actor.get_username() if is_user else "system",
        action=action,
        target=target[:255],
        details=details,
    )
