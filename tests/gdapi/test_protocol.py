"""Protocol edges over raw signed HTTP: bad JSON, unknown paths, operations Vigil does not serve,
and the error shape botocore reads (x-amzn-ErrorType + __type/message)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError


def _call(endpoint: str, principal, method: str, path: str, body: bytes = b"") -> tuple[int, dict, dict]:
    request = AWSRequest(method=method, url=f"{endpoint}{path}", data=body,
                         headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(principal.key.access_key_id, principal.secret), "guardduty", "us-east-1").add_auth(request)
    prepared = urllib.request.Request(request.url, data=body or None, headers=dict(request.headers.items()),
                                      method=method)
    try:
        with urllib.request.urlopen(prepared, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"{}")


@pytest.fixture
def alice(principal_factory):
    return principal_factory(region="us-east-1")


def test_invalid_json_body(alice, endpoint):
    det = alice.account.detectors.get().detector_id
    status, headers, body = _call(endpoint, alice, "POST", f"/detector/{det}/member", b"{not json")
    assert status == 400 and headers["x-amzn-ErrorType"] == "BadRequestException"
    assert body["__type"] == "BadRequestException" and "not valid JSON" in body["message"]
    status, _, body = _call(endpoint, alice, "POST", f"/detector/{det}/member", b'{"accountDetails": "nope"}')
    assert status == 400 and "accountDetails must be a list" in body["message"]


def test_unknown_path_and_method(alice, endpoint):
    status, headers, body = _call(endpoint, alice, "GET", "/no/such/thing")
    assert status == 404 and body["__type"] == "UnknownOperationException"
    status, _, body = _call(endpoint, alice, "PUT", "/detector")
    assert status == 405


def test_operation_vigil_does_not_serve(alice, make_client):
    gd = make_client(alice)
    with pytest.raises(ClientError) as exc:
        gd.list_coverage(DetectorId=alice.account.detectors.get().detector_id)
    assert exc.value.response["Error"]["Code"] == "BadRequestException"
    assert "does not implement the ListCoverage operation" in exc.value.response["Error"]["Message"]


def test_success_carries_request_id(alice, make_client):
    response = make_client(alice).list_detectors()
    assert len(response["ResponseMetadata"]["RequestId"]) == 36
