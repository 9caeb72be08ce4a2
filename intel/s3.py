"""Reading a list from S3 through the account's assumed role. Only `s3://bucket/key` is accepted:
Vigil never fetches an arbitrary URL on a user's behalf (no server-side request forgery)."""

from __future__ import annotations

import re

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from accounts.models import Account
from console.errors import ServiceError
from intel.parsers import MAX_FILE_BYTES

# Bucket naming rules (lower case, 3-63 characters); keys of printable characters.
S3_URI_RE = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\x00-\x1f\x7f]{1,1024})$")
_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2})


def parse_s3_uri(uri: str) -> tuple[str, str]:
    m = S3_URI_RE.match(uri or "")
    if not m:
        raise ServiceError(
            "The location must be an S3 URI such as s3://my-bucket/lists/threats.txt "
            "(Vigil reads lists only from S3, never from other URLs)."
        )
    return m.group("bucket"), m.group("key")


def _session(account: Account) -> boto3.session.Session:
    if not account.role_arn:
        return boto3.session.Session()
    params = {"RoleArn": account.role_arn, "RoleSessionName": "vigil-intel"}
    if account.external_id:
        params["ExternalId"] = account.external_id
    sts = boto3.client("sts", endpoint_url=settings.AWS_ENDPOINT_URL or None, config=_CONFIG)
    creds = sts.assume_role(**params)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def read_s3_object(*, account: Account | None, uri: str, region: str = "us-east-1",
                   expected_bucket_owner: str = "") -> bytes:
    """The object's bytes, read through `account`'s assumed role (None: Vigil's own credentials,
    for operators refreshing built-in feeds)."""
    bucket, key = parse_s3_uri(uri)
    try:
        session = _session(account) if account is not None else boto3.session.Session()
        client = session.client("s3", region_name=region, endpoint_url=settings.AWS_ENDPOINT_URL or None, config=_CONFIG)
        params = {"Bucket": bucket, "Key": key}
        if expected_bucket_owner:
            params["ExpectedBucketOwner"] = expected_bucket_owner
        obj = client.get_object(**params)
        if obj.get("ContentLength", 0) > MAX_FILE_BYTES:
            raise ServiceError(f"{uri} is {obj['ContentLength']:,} bytes; the limit is {MAX_FILE_BYTES:,} bytes (35 MB).")
        return obj["Body"].read(MAX_FILE_BYTES + 1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "Error")
        raise ServiceError(f"Cannot read {uri}: {code} ({exc.response.get('Error', {}).get('Message', '')}).")
    except BotoCoreError as exc:
        raise ServiceError(f"Cannot read {uri}: {exc}.")
