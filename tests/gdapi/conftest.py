"""A live Vigil server on loopback and real boto3 clients signed with real access keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from accounts.models import Account
from gdapi.models import AccessKey
from gdapi.services import access_key_create
from tests.factories import AccountFactory


@dataclass
class Principal:
    user: object
    account: Account
    key: AccessKey
    secret: str


@pytest.fixture
def endpoint(live_server) -> str:
    return f"{live_server.url}/gd"


@pytest.fixture
def make_client(endpoint: str) -> Callable[..., object]:
    def make(principal: Principal | None = None, *, key_id: str | None = None, secret: str | None = None,
             region: str = "us-east-1", **kwargs):
        return boto3.client(
            "guardduty", endpoint_url=endpoint, region_name=region,
            aws_access_key_id=key_id or principal.key.access_key_id,
            aws_secret_access_key=secret or principal.secret,
            **{"config": Config(retries={"max_attempts": 1}), **kwargs},
        )
    return make


@pytest.fixture
def principal_factory(transactional_db) -> Callable[..., Principal]:
    factory = AccountFactory()

    def make(*, region: str | None = None, role: str = "admin", email: str = "") -> Principal:
        user = factory.user()
        account = factory.account(admin=user, role=role, region=region, email=email)
        key, secret = access_key_create(actor=user, account=account)
        return Principal(user=user, account=account, key=key, secret=secret)
    return make


# The moto S3 server and bucket of the intel suite, for lists read from S3.
from tests.intel.conftest import moto_endpoint, s3  # noqa: E402, F401
