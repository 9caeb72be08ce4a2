"""Access keys: the console section, the management command, encryption at rest, revocation rules."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from accounts.middleware import SESSION_ACCOUNT
from accounts.models import AuditEvent
from console.errors import NotFoundError, PermissionDeniedError
from gdapi.crypto import decrypt_secret
from gdapi.models import AccessKey
from gdapi.services import access_key_create, access_key_revoke


def _login(client, user, account):
    client.force_login(user)
    session = client.session
    session[SESSION_ACCOUNT] = account.id
    session.save()
    return client


def test_console_creates_lists_and_revokes_keys(client, factory):
    user = factory.user()
    account = factory.account(admin=user)
    _login(client, user, account)
    response = client.post(reverse("accounts:settings"), {"op": "access_key_create", "description": "soar"},
                           follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    match = re.search(r"access key (VGLA[A-Z2-7]{16}); secret \(shown once, copy it now\): (\S{40})", text)
    assert match, text
    key = AccessKey.objects.get(access_key_id=match[1])
    assert (key.user, key.account, key.description) == (user, account, "soar")
    # Stored encrypted, never in clear.
    assert match[2] not in key.secret_encrypted and decrypt_secret(key.secret_encrypted) == match[2]
    # The secret is not on the page any more.
    page = client.get(reverse("accounts:settings")).content.decode()
    assert match[1] in page and match[2] not in page and 'id="access-keys"' in page
    client.post(reverse("accounts:settings"), {"op": "access_key_revoke", "access_key_id": key.access_key_id})
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert list(AuditEvent.objects.filter(account=account, target=key.access_key_id).values_list("action", flat=True)
                .order_by("id")) == ["access_key.created", "access_key.revoked"]


def test_other_people_cannot_revoke_or_see_keys(client, factory):
    owner, stranger, analyst, admin = factory.user(), factory.user(), factory.user(), factory.user()
    account = factory.account(admin=owner, role="analyst")
    factory.grant(analyst, account, "analyst")
    factory.grant(admin, account, "admin")
    factory.account(admin=stranger)
    key, _ = access_key_create(actor=owner, account=account)
    with pytest.raises(NotFoundError):
        access_key_revoke(actor=stranger, access_key_id=key.access_key_id)
    with pytest.raises(PermissionDeniedError):
        access_key_revoke(actor=analyst, access_key_id=key.access_key_id)
    page = _login(client, stranger, stranger.account_memberships.get().account).get(reverse("accounts:settings"))
    assert key.access_key_id not in page.content.decode()
    access_key_revoke(actor=admin, access_key_id=key.access_key_id)
    assert AccessKey.objects.get(id=key.id).revoked_at is not None


def test_keys_only_for_own_accounts(factory):
    user, other = factory.user(), factory.user()
    foreign = factory.account(admin=other)
    with pytest.raises(NotFoundError):
        access_key_create(actor=user, account=foreign)


def test_management_command_prints_key_and_secret(factory):
    user = factory.user("scripts")
    account = factory.account(admin=user)
    out = io.StringIO()
    call_command("create_access_key", "scripts", stdout=out, stderr=io.StringIO())
    lines = dict(line.split(" = ") for line in out.getvalue().splitlines())
    key = AccessKey.objects.get(access_key_id=lines["aws_access_key_id"])
    assert key.account == account and decrypt_secret(key.secret_encrypted) == lines["aws_secret_access_key"]
    second = factory.account(admin=user)
    with pytest.raises(CommandError, match="several accounts"):
        call_command("create_access_key", "scripts", stdout=io.StringIO())
    call_command("create_access_key", "scripts", "--account", second.aws_account_id, stdout=io.StringIO(),
                 stderr=io.StringIO())
    assert AccessKey.objects.filter(user=user, account=second).count() == 1
    with pytest.raises(CommandError, match="No user"):
        call_command("create_access_key", "nobody", stdout=io.StringIO())


def test_secret_survives_key_rotation_with_fallback(factory, settings):
    user = factory.user()
    key, secret = access_key_create(actor=user, account=factory.account(admin=user))
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "x" * 40, [old]
    assert decrypt_secret(key.secret_encrypted) == secret
    settings.SECRET_KEY_FALLBACKS = []
    assert decrypt_secret(key.secret_encrypted) is None
