"""Refusals: every badly signed, expired, mis-scoped, revoked or foreign request gets GuardDuty's
(AWS's) error, no data, a log line, and an audit row when the key id is known."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request

import botocore.auth
import pytest
from botocore import UNSIGNED
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from accounts.models import AuditEvent
from gdapi.services import access_key_revoke


def _error(call) -> dict:
    with pytest.raises(ClientError) as exc:
        call()
    response = exc.value.response
    return {"code": response["Error"]["Code"], "message": response["Error"]["Message"],
            "status": response["ResponseMetadata"]["HTTPStatusCode"]}


def _refusals(principal) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(account=principal.account, action="gdapi.request_refused"))


@pytest.fixture
def alice(principal_factory):
    return principal_factory(region="us-east-1")


def test_wrong_secret_is_refused_and_audited(alice, make_client, caplog):
    caplog.set_level(logging.WARNING, logger="vigil.gdapi")
    err = _error(lambda: make_client(alice, secret="x" * 40).list_detectors())
    assert err == {"code": "InvalidSignatureException", "status": 403, "message": pytest.approx(err["message"])}
    assert err["message"].startswith("The request signature we calculated does not match")
    [event] = _refusals(alice)
    assert event.target == alice.key.access_key_id and event.details["error"] == "InvalidSignatureException"
    assert event.actor is None  # a wrong secret proves nothing about who sent it
    assert any("InvalidSignatureException" in r.getMessage() for r in caplog.records)
    # Hammering with the bad secret is logged every time but audited once a minute.
    for _ in range(3):
        _error(lambda: make_client(alice, secret="x" * 40).list_detectors())
    assert len(_refusals(alice)) == 1
    assert sum("InvalidSignatureException" in r.getMessage() for r in caplog.records) == 4


def test_unknown_and_revoked_keys(alice, make_client):
    err = _error(lambda: make_client(key_id="VGLAUNKNOWNUNKNOWN12", secret="x" * 40).list_detectors())
    assert (err["code"], err["status"]) == ("UnrecognizedClientException", 403)
    gd = make_client(alice)
    assert len(gd.list_detectors()["DetectorIds"]) == 1
    access_key_revoke(actor=alice.user, access_key_id=alice.key.access_key_id)
    err = _error(lambda: gd.list_detectors())
    assert err == {"code": "UnrecognizedClientException", "status": 403,
                   "message": "The security token included in the request is invalid."}
    assert [e.details["error"] for e in _refusals(alice)] == ["UnrecognizedClientException"]


@pytest.mark.parametrize("skew_minutes, wording", [(-10, "Signature expired"), (10, "Signature not yet current")])
def test_skewed_date_is_refused(alice, make_client, monkeypatch, skew_minutes, wording):
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=skew_minutes)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    err = _error(lambda: make_client(alice).list_detectors())
    assert (err["code"], err["status"]) == ("InvalidSignatureException", 403)
    assert err["message"].startswith(wording)
    assert "5 min." in err["message"]
    assert _refusals(alice)[0].details["error"] == "InvalidSignatureException"


def test_small_skew_is_accepted(alice, make_client, monkeypatch):
    skewed = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=4)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: skewed)
    assert len(make_client(alice).list_detectors()["DetectorIds"]) == 1


def test_wrong_region_scope(alice, make_client):
    err = _error(lambda: make_client(alice, region="xx-nowhere-1").list_detectors())
    assert (err["code"], err["status"]) == ("InvalidSignatureException", 403)
    assert "valid region" in err["message"]
    assert _refusals(alice)
    # A real region that is not the detector's: the detector is not this region's.
    det = make_client(alice).list_detectors()["DetectorIds"][0]
    west = make_client(alice, region="us-west-2")
    assert west.list_detectors()["DetectorIds"] == []
    err = _error(lambda: west.get_detector(DetectorId=det))
    assert err["code"] == "BadRequestException"
    assert err["message"] == "The request is rejected because the input detectorId is not owned by the current account."


def _signed(endpoint: str, principal, *, service: str, region: str = "us-east-1") -> urllib.request.Request:
    request = AWSRequest(method="GET", url=f"{endpoint}/detector", headers={})
    botocore.auth.SigV4Auth(Credentials(principal.key.access_key_id, principal.secret), service, region) \
        .add_auth(request)
    return urllib.request.Request(request.url, headers=dict(request.headers.items()), method="GET")


def _send(request: urllib.request.Request) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_wrong_service_scope(alice, endpoint):
    status, headers, body = _send(_signed(endpoint, alice, service="s3"))
    assert status == 403
    assert headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert body == {"__type": "InvalidSignatureException",
                    "message": "Credential should be scoped to correct service: 'guardduty'."}
    # The same request signed for guardduty goes through: the refusal was the scope alone.
    status, _, body = _send(_signed(endpoint, alice, service="guardduty"))
    assert status == 200 and len(body["detectorIds"]) == 1


def test_tampered_request_is_refused(alice, endpoint):
    request = _signed(endpoint, alice, service="guardduty")
    request.full_url = request.full_url + "?maxResults=1"
    status, headers, body = _send(request)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")


def test_unsigned_request_gets_no_data(alice, make_client, endpoint, caplog):
    caplog.set_level(logging.WARNING, logger="vigil.gdapi")
    err = _error(lambda: make_client(alice, config=Config(signature_version=UNSIGNED)).list_detectors())
    assert (err["code"], err["status"]) == ("MissingAuthenticationTokenException", 403)
    status, _, body = _send(urllib.request.Request(f"{endpoint}/detector"))
    assert status == 403 and "detectorIds" not in body
    assert any("MissingAuthenticationTokenException" in r.getMessage() for r in caplog.records)


def test_other_accounts_detector_is_not_owned(principal_factory, make_client):
    alice, bob = principal_factory(region="us-east-1"), principal_factory(region="us-east-1")
    bob_det = make_client(bob).list_detectors()["DetectorIds"][0]
    gd = make_client(alice)
    for call in (lambda: gd.get_detector(DetectorId=bob_det),
                 lambda: gd.list_members(DetectorId=bob_det),
                 lambda: gd.delete_detector(DetectorId=bob_det),
                 lambda: gd.list_tags_for_resource(
                     ResourceArn=f"arn:aws:guardduty:us-east-1:{alice.account.aws_account_id}:detector/{bob_det}")):
        err = _error(call)
        assert err == {"code": "BadRequestException", "status": 400, "message":
                       "The request is rejected because the input detectorId is not owned by the current account."}
    err = _error(lambda: gd.list_tags_for_resource(
        ResourceArn=f"arn:aws:guardduty:us-east-1:{bob.account.aws_account_id}:detector/{bob_det}"))
    assert (err["code"], err["status"]) == ("AccessDeniedException", 403)
    refusals = _refusals(alice)
    assert len(refusals) == 5 and all(e.actor == alice.user for e in refusals)
    assert not AuditEvent.objects.filter(account=bob.account, action="gdapi.request_refused").exists()
    assert make_client(bob).get_detector(DetectorId=bob_det)["Status"] == "ENABLED"


def test_viewer_cannot_write(principal_factory, make_client):
    viewer = principal_factory(region="us-east-1", role="viewer")
    gd = make_client(viewer)
    det = gd.list_detectors()["DetectorIds"][0]
    assert gd.get_detector(DetectorId=det)["Status"] == "ENABLED"
    err = _error(lambda: gd.create_members(DetectorId=det, AccountDetails=[
        {"AccountId": "300000000001", "Email": "a@example.com"}]))
    assert (err["code"], err["status"]) == ("AccessDeniedException", 403)
    assert _refusals(viewer)[0].details["operation"] == "CreateMembers"


def test_key_of_removed_person_stops_working(principal_factory, make_client):
    alice = principal_factory(region="us-east-1")
    alice.account.memberships.filter(user=alice.user).delete()
    err = _error(lambda: make_client(alice).list_detectors())
    assert (err["code"], err["status"]) == ("AccessDeniedException", 403)
