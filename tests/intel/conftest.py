"""A real moto S3/STS server on loopback for lists read from s3:// locations."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        # Dummy credentials: boto3 signs requests, moto accepts any key.
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_SESSION_TOKEN", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.delenv("AWS_PROFILE", raising=False)
        yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, settings):
    settings.AWS_ENDPOINT_URL = moto_endpoint
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="vigil-lists")
    yield client
    for obj in client.list_objects_v2(Bucket="vigil-lists").get("Contents", []):
        client.delete_object(Bucket="vigil-lists", Key=obj["Key"])
    client.delete_bucket(Bucket="vigil-lists")


@pytest.fixture(autouse=True)
def _fresh_matcher_cache():
    from intel.services import matcher_cache_clear

    matcher_cache_clear()
    yield
    matcher_cache_clear()
