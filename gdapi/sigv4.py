"""AWS Signature Version 4, server side: rebuild the canonical request exactly as botocore
builds it (botocore.auth.SigV4Auth) and compare signatures. Pure functions, no Django.

Reference behaviour (botocore 1.44): the canonical URI is the request path percent-encoded once
more (`quote(path, safe="/~")`, so `%3A` becomes `%253A`); the canonical query string is the
raw pairs sorted; headers are lower-cased, values whitespace-collapsed; the payload hash is the
SHA-256 of the body unless an `X-Amz-Content-SHA256` header gives it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


class SignatureError(Exception):
    """A refused signature: `code` is the AWS error type, `status` its HTTP status."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class Authorization:
    access_key_id: str
    date: str          # YYYYMMDD from the credential scope
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def parse_authorization(header: str) -> Authorization:
    match = _AUTH_RE.match(header.strip())
    if not match:
        if not header.strip().startswith(ALGORITHM):
            raise SignatureError("IncompleteSignatureException",
                                 f"Authorization header requires the {ALGORITHM} algorithm.", 400)
        raise SignatureError(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.", 400,
        )
    parts = match["credential"].split("/")
    if len(parts) != 5 or not all(parts):
        raise SignatureError("IncompleteSignatureException",
                             "Credential must have exactly 5 slash-delimited elements, e.g. "
                             "keyid/date/region/service/aws4_request.", 400)
    signed = tuple(match["signed"].split(";"))
    if list(signed) != sorted(signed) or any(h != h.lower() for h in signed):
        raise SignatureError("IncompleteSignatureException", "SignedHeaders must be lower-case and sorted.", 400)
    return Authorization(parts[0], parts[1], parts[2], parts[3], parts[4], signed, match["signature"])


def parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError("IncompleteSignatureException",
                             "X-Amz-Date must be in ISO 8601 basic format, e.g. 20150830T123600Z.", 400) from exc


def check_date_window(amz_date: str, request_time: datetime, now: datetime, max_skew_seconds: int) -> None:
    """AWS's wording: signatures older or newer than the allowed skew are refused."""
    skew = (request_time - now).total_seconds()
    minutes = max_skew_seconds // 60
    fmt = "%Y%m%dT%H%M%SZ"
    if skew < -max_skew_seconds:
        limit = datetime.fromtimestamp(now.timestamp() - max_skew_seconds, UTC)
        raise SignatureError("InvalidSignatureException",
                             f"Signature expired: {amz_date} is now earlier than {limit:{fmt}} "
                             f"({now:{fmt}} - {minutes} min.)")
    if skew > max_skew_seconds:
        limit = datetime.fromtimestamp(now.timestamp() + max_skew_seconds, UTC)
        raise SignatureError("InvalidSignatureException",
                             f"Signature not yet current: {amz_date} is still later than {limit:{fmt}} "
                             f"({now:{fmt}} + {minutes} min.)")


def normalize_path(path: str) -> str:
    """botocore.utils.normalize_url_path: RFC 3986 dot-segment removal, repeated slashes dropped."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if kept:
                    kept.pop()
            else:
                kept.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and kept else ""
    return first + "/".join(kept) + last


def canonical_uri(raw_path: str) -> str:
    return quote(normalize_path(raw_path), safe="/~")


def canonical_query(raw_query: str) -> str:
    """Pairs decoded then encoded per the SigV4 rules (unreserved kept), sorted by key then value."""
    if not raw_query:
        return ""
    pairs = []
    for pair in raw_query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(*, method: str, raw_path: str, raw_query: str, headers: dict[str, str],
                      signed_headers: tuple[str, ...], payload_hash: str) -> str:
    lines = [method.upper(), canonical_uri(raw_path), canonical_query(raw_query)]
    lines.append("".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers))
    lines.append(";".join(signed_headers))
    lines.append(payload_hash)
    return "\n".join(lines)


def string_to_sign(*, amz_date: str, scope: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(secret: str, auth: Authorization, to_sign: str) -> str:
    key = signing_key(secret, auth.date, auth.region, auth.service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def signatures_match(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode())
