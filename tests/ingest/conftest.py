"""A real moto S3/STS/SQS server on loopback, and helpers to fill member accounts' buckets."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ingest.aws import clear_session_cache


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, settings, monkeypatch) -> Iterator[str]:
    """Dummy credentials for Vigil's own identity; member accounts are reached by AssumeRole."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    settings.AWS_ENDPOINT_URL = moto_endpoint
    clear_session_cache()
    yield moto_endpoint
    clear_session_cache()


# Test-side clients per role and service (building a boto3 client costs ~0.3 s). Session-wide:
# moto keeps every account's resources for the whole run.
_CLIENTS: dict[str, dict[str, Any]] = {}


@dataclass
class Member:
    """A member account as AWS would see it: its role, and clients acting as that role."""

    aws_account_id: str
    role_arn: str
    external_id: str
    endpoint: str

    def client(self, service: str) -> Any:
        if service in _CLIENTS.setdefault(self.role_arn, {}):
            return _CLIENTS[self.role_arn][service]
        sts = _CLIENTS.setdefault("", {}).get("sts") or boto3.client("sts", endpoint_url=self.endpoint, region_name="us-east-1")
        _CLIENTS[""]["sts"] = sts
        creds = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="test-setup", ExternalId=self.external_id)[
            "Credentials"]
        client = boto3.client(service, endpoint_url=self.endpoint, region_name="us-east-1",
                              aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                              aws_session_token=creds["SessionToken"])
        _CLIENTS[self.role_arn][service] = client
        return client

    def put(self, bucket: str, key: str, data: bytes | str | dict | list, *, compress: bool = True) -> None:
        if isinstance(data, dict | list):
            data = json.dumps(data)
        if isinstance(data, str):
            data = data.encode()
        self.client("s3").put_object(Bucket=bucket, Key=key, Body=gzip.compress(data) if compress else data)


@pytest.fixture
def member_factory(aws: str):
    counter = iter(range(1, 1000))

    def make(aws_account_id: str, bucket: str) -> Member:
        member = Member(aws_account_id, f"arn:aws:iam::{aws_account_id}:role/VigilReader", f"ext-{next(counter)}", aws)
        s3 = member.client("s3")
        if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
            s3.create_bucket(Bucket=bucket)
        return member

    return make



@pytest.fixture(autouse=True)
def _fresh_matchers():
    """intel caches compiled matchers per process; each test has its own lists."""
    from intel.services import matcher_cache_clear

    matcher_cache_clear()
    yield
    matcher_cache_clear()
