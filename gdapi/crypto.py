"""Encryption of access-key secrets at rest with a key derived from SECRET_KEY.

SECRET_KEY_FALLBACKS are tried when decrypting, so a rotated SECRET_KEY keeps existing keys
working until the fallback is dropped (keys created since are encrypted with the new one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

_CONTEXT = b"vigil.gdapi.access-key-secret.v1"


def _fernet_for(secret_key: str) -> Fernet:
    # SECRET_KEY is already high-entropy: one HMAC is a sound key derivation (HKDF-Extract).
    derived = hmac.new(secret_key.encode(), _CONTEXT, hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def _cipher() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet_for(k) for k in keys])


def encrypt_secret(secret: str) -> str:
    return _cipher().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str | None:
    """The plaintext secret, or None when no current or fallback SECRET_KEY can decrypt it."""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def token_cipher() -> Fernet:
    """Encrypts pagination tokens (a separate derived key: tokens and secrets never share one)."""
    derived = hmac.new(settings.SECRET_KEY.encode(), b"vigil.gdapi.pagination-token.v1", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(derived))
