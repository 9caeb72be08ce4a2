"""Authenticate a GuardDuty API request by its SigV4 signature and map it to a person and account.

Order of checks follows AWS: header shape, credential scope (service, region), key id, date
window, then the signature itself. Any failure is answered with AWS's error type and no data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from accounts import access
from accounts.models import Account
from gdapi import sigv4
from gdapi.crypto import decrypt_secret
from gdapi.models import AccessKey
from gdapi.protocol import SERVICE
from gdapi.sigv4 import SignatureError

INVALID_TOKEN = "The security token included in the request is invalid."  # noqa: S105 (an error message)
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class Caller:
    key: AccessKey
    user: object
    account: Account
    region: str


def request_headers(request: HttpRequest) -> dict[str, str]:
    """Lower-cased header names as the client sent them (WSGI keeps content-type/length apart)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    return headers


def max_skew_seconds() -> int:
    return int(getattr(settings, "VIGIL_GDAPI_MAX_CLOCK_SKEW_SECONDS", 300))


def scope_regions() -> list[str]:
    return list(getattr(settings, "VIGIL_REGIONS", []))


def authenticate(request: HttpRequest, *, canonical_path: str, body: bytes) -> tuple[Caller | None, SignatureError | None,
                                                                                          AccessKey | None]:
    """(caller, None, key) when the signature is good; (None, error, key-if-known) otherwise."""
    headers = request_headers(request)
    header = headers.get("authorization", "")
    if not header:
        if "X-Amz-Signature" in request.GET or "X-Amz-Credential" in request.GET:
            return None, SignatureError("AccessDeniedException",
                                        "Query-string (presigned) signatures are not accepted; sign the "
                                        "Authorization header."), None
        return None, SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token"), None
    key: AccessKey | None = None
    try:
        auth = sigv4.parse_authorization(header)
        # Looked up first so that a refusal for any reason is audited against the key's account.
        key = (AccessKey.objects.select_related("user", "account")
               .filter(access_key_id=auth.access_key_id).first())
        if auth.terminator != "aws4_request":
            raise SignatureError("InvalidSignatureException", "Credential should be scoped with a valid terminator: "
                                 "'aws4_request', not '" + auth.terminator + "'.")
        if auth.service != SERVICE:
            raise SignatureError("InvalidSignatureException",
                                 f"Credential should be scoped to correct service: '{SERVICE}'.")
        if auth.region not in scope_regions():
            raise SignatureError("InvalidSignatureException",
                                 f"Credential should be scoped to a valid region, not '{auth.region}'.")
        if key is None or key.revoked_at is not None or not key.user.is_active:
            raise SignatureError("UnrecognizedClientException", INVALID_TOKEN)
        amz_date = headers.get("x-amz-date", "")
        if not amz_date:
            raise SignatureError("IncompleteSignatureException",
                                 "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
                                 "header.", 400)
        request_time = sigv4.parse_amz_date(amz_date)
        if amz_date[:8] != auth.date:
            raise SignatureError("InvalidSignatureException",
                                 f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                                 f"from HTTP: '{auth.date}' != '{amz_date[:8]}', from '{amz_date}'.")
        for required in ("host", "x-amz-date"):
            if required not in auth.signed_headers:
                raise SignatureError("InvalidSignatureException",
                                     f"'{required}' must be a 'SignedHeader' in the AWS Authorization.")
        sigv4.check_date_window(amz_date, request_time, timezone.now(), max_skew_seconds())
        payload_hash = hashlib.sha256(body).hexdigest()
        declared = headers.get("x-amz-content-sha256")
        if declared is not None and declared != payload_hash:
            raise SignatureError("InvalidSignatureException",
                                 "The provided 'x-amz-content-sha256' header does not match what was computed.", 400)
        secret = decrypt_secret(key.secret_encrypted)
        if secret is None:  # SECRET_KEY changed without a fallback: the key cannot be verified
            raise SignatureError("UnrecognizedClientException", INVALID_TOKEN)
        canonical = sigv4.canonical_request(
            method=request.method or "GET", raw_path=canonical_path, raw_query=request.META.get("QUERY_STRING", ""),
            headers=headers, signed_headers=auth.signed_headers, payload_hash=payload_hash,
        )
        to_sign = sigv4.string_to_sign(amz_date=amz_date, scope=auth.scope, canonical=canonical)
        if not sigv4.signatures_match(sigv4.signature(secret, auth, to_sign), auth.signature):
            raise SignatureError("InvalidSignatureException", SIGNATURE_MISMATCH)
        if access.role_in(key.user, key.account) is None:
            raise SignatureError("AccessDeniedException",
                                 f"The key's owner no longer belongs to account {key.account.aws_account_id}.")
    except SignatureError as exc:
        return None, exc, key
    return Caller(key=key, user=key.user, account=key.account, region=auth.region), None, key
