"""boto3 access to member accounts: STS AssumeRole with the account's role ARN and external id,
session credentials cached per process until shortly before they expire."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.utils import parse_timestamp
from django.conf import settings

from accounts.models import Account

BOTO_CONFIG = Config(connect_timeout=10, read_timeout=60, retries={"mode": "standard", "max_attempts": 5})
SESSION_SECONDS = 3600
REFRESH_MARGIN = timedelta(minutes=5)

_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[dict[str, str], datetime]] = {}


def _endpoint() -> str | None:
    return settings.AWS_ENDPOINT_URL or None


def _assume(role_arn: str, external_id: str) -> tuple[dict[str, str], datetime]:
    sts = boto3.client("sts", endpoint_url=_endpoint(), config=BOTO_CONFIG)
    params: dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": "vigil-ingest", "DurationSeconds": SESSION_SECONDS}
    if external_id:
        params["ExternalId"] = external_id
    creds = sts.assume_role(**params)["Credentials"]
    expiry = creds["Expiration"]
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)
    return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"]}, expiry


def aws_timestamp(value: Any) -> datetime:
    """A timestamp of an AWS response: ISO-8601 (XML and JSON bodies) or RFC 1123 (HTTP headers) as
    AWS writes them, without dateutil, botocore's parser, which takes ~50 us a value: a listing page
    has 1000 LastModified values, every GET one header. Anything else goes to botocore's parser."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if value[:1].isdigit() else parsedate_to_datetime(value)
        except (ValueError, TypeError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    return parse_timestamp(value)


def _session(**credentials: str) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=aws_timestamp)
    return boto3.session.Session(botocore_session=core, **credentials)


def session_for(account: Account) -> boto3.session.Session:
    """A boto3 session acting in `account` (its role), or Vigil's own credentials without a role."""
    if not account.role_arn:
        return _session()
    key = (account.role_arn, account.external_id)
    with _lock:
        cached = _cache.get(key)
        if cached is None or cached[1] - REFRESH_MARGIN <= datetime.now(UTC):
            cached = _assume(*key)
            _cache[key] = cached
    return _session(**cached[0])


_clients: dict[tuple, Any] = {}


def client_for(account: Account, service: str, region: str | None = None) -> Any:
    """A cached client: building one loads botocore's service model (~0.3 s), far more than a call."""
    session = session_for(account)
    creds = session.get_credentials()
    key = (account.role_arn, account.external_id, service, region or "us-east-1", _endpoint(),
           creds.access_key if creds else None)
    with _lock:
        client = _clients.get(key)
    if client is None:
        client = session.client(service, endpoint_url=_endpoint(), region_name=region or "us-east-1", config=BOTO_CONFIG)
        with _lock:
            if len(_clients) > 1000:
                _clients.clear()
            _clients[key] = client
    return client


def forget_session(account: Account) -> None:
    """Drop an account's cached credentials (AWS said they expired or were revoked)."""
    with _lock:
        _cache.pop((account.role_arn, account.external_id), None)


def clear_session_cache() -> None:
    with _lock:
        _cache.clear()
        _clients.clear()
