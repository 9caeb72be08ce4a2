"""Writes for access keys: create (secret returned once), revoke, record use."""

from __future__ import annotations

import secrets
import string
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts import access
from accounts.events import audit_record
from accounts.models import Account
from console.errors import NotFoundError, PermissionDeniedError
from gdapi.crypto import encrypt_secret
from gdapi.models import AccessKey

KEY_ID_PREFIX = "VGLA"  # AWS long-term keys start AKIA; ours are recognisably Vigil's.
_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


def new_access_key_id() -> str:
    return KEY_ID_PREFIX + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


@transaction.atomic
def access_key_create(*, actor: Any, account: Account, description: str = "") -> tuple[AccessKey, str]:
    """A key acting as `actor` in `account` (any role: each operation still checks the role).
    Returns the key and its secret, which is never shown again."""
    if access.role_in(actor, account) is None:
        raise NotFoundError("No such account.")
    secret = new_secret()
    key = AccessKey.objects.create(
        user=actor, account=account, access_key_id=new_access_key_id(),
        secret_encrypted=encrypt_secret(secret), description=description.strip()[:100],
    )
    audit_record(account=account, actor=actor, action="access_key.created", target=key.access_key_id)
    return key, secret


@transaction.atomic
def access_key_revoke(*, actor: Any, access_key_id: str) -> AccessKey:
    """The owner revokes their own key; an account admin may revoke anyone's key in that account."""
    key = AccessKey.objects.select_for_update().select_related("account").filter(access_key_id=access_key_id).first()
    if key is None or (key.user_id != actor.pk and access.role_in(actor, key.account) is None):
        raise NotFoundError("No such access key.")
    if key.user_id != actor.pk and access.role_in(actor, key.account) not in access.ADMIN_ROLES:
        raise PermissionDeniedError("Only the key's owner or an account admin can revoke it.")
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(account=key.account, actor=actor, action="access_key.revoked", target=key.access_key_id)
    return key


def access_key_touch(*, key: AccessKey) -> None:
    """Record use, at most once a minute per key so busy scripts do not write on every call."""
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() >= 60:
        AccessKey.objects.filter(id=key.id).update(last_used_at=now)
