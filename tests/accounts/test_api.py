"""The REST API: token and session auth, every operation, refusals as clear 4xx JSON."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.authentication import api_token_create
from accounts.models import Detector, Member, RelationshipStatus


@pytest.fixture
def api(db) -> APIClient:
    return APIClient()


def _bearer(api: APIClient, user) -> APIClient:
    _, raw = api_token_create(user=user, name="test")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def test_api_requires_authentication(api):
    assert api.get("/api/accounts/").status_code in (401, 403)


def test_bad_token_refused(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer vgl_nope")
    assert api.get("/api/accounts/").status_code == 401


def test_revoked_token_refused(api, factory):
    from django.utils import timezone

    user = factory.user()
    token, raw = api_token_create(user=user, name="t")
    token.revoked_at = timezone.now()
    token.save()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.get("/api/accounts/").status_code == 401


def test_token_stored_hashed(factory):
    token, raw = api_token_create(user=factory.user(), name="t")
    assert raw not in token.token_hash and len(token.token_hash) == 64


def test_full_invitation_flow_over_api(api, factory, django_capture_on_commit_callbacks):
    admin_user, member_user = factory.user(), factory.user()
    factory.account(admin=admin_user, aws_account_id="111111111111")
    factory.account(admin=member_user, aws_account_id="222222222222", email="m@example.com")
    admin_api = _bearer(APIClient(), admin_user)
    member_api = _bearer(APIClient(), member_user)

    r = admin_api.post("/api/accounts/111111111111/members/",
                       {"account_details": [{"account_id": "222222222222", "email": "m@example.com"}]}, format="json")
    assert r.status_code == 200 and r.json() == {"unprocessed_accounts": []}
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_api.post("/api/accounts/111111111111/members/invite/", {"account_ids": ["222222222222"]},
                           format="json")
    assert r.status_code == 200 and r.json()["unprocessed_accounts"] == []
    # The email verification task ran (eagerly) once the invitation was committed.
    invitations = member_api.get("/api/accounts/222222222222/invitations/").json()
    assert invitations[0]["account_id"] == "111111111111"
    r = member_api.post("/api/accounts/222222222222/invitations/accept/",
                        {"administrator_id": "111111111111", "invitation_id": invitations[0]["invitation_id"]},
                        format="json")
    assert r.status_code == 200 and r.json()["relationship_status"] == "Enabled"
    assert member_api.get("/api/accounts/222222222222/administrator/").json()["administrator_id"] == "111111111111"
    members = admin_api.get("/api/accounts/111111111111/members/?only_associated=true").json()
    assert [m["relationship_status"] for m in members] == ["Enabled"]
    # The administrator now sees the member's detector.
    detector_accounts = {d["account_id"] for d in admin_api.get("/api/detectors/").json()}
    assert detector_accounts == {"111111111111", "222222222222"}
    r = admin_api.post("/api/accounts/111111111111/members/stop-monitoring/", {"account_ids": ["222222222222"]},
                       format="json")
    assert r.json()["unprocessed_accounts"] == []
    assert Member.objects.get().relationship_status == RelationshipStatus.DISABLED
    assert member_api.delete("/api/accounts/222222222222/administrator/").status_code == 204
    assert Member.objects.get().relationship_status == RelationshipStatus.RESIGNED
    audit = admin_api.get("/api/accounts/111111111111/audit/").json()
    assert {"member.created", "member.invited", "invitation.accepted"} <= {e["action"] for e in audit}


def test_user_of_account_a_cannot_read_or_change_account_b(api, factory):
    admin_account, *_ = factory.organisation()
    stranger = factory.user()
    factory.account(admin=stranger)
    client = _bearer(api, stranger)
    aid = admin_account.aws_account_id
    assert client.get(f"/api/accounts/{aid}/").status_code == 404
    assert client.get(f"/api/accounts/{aid}/members/").status_code == 404
    assert client.post(f"/api/accounts/{aid}/members/invite/", {"account_ids": ["222222222222"]},
                       format="json").status_code == 404
    detector = admin_account.detectors.get()
    assert client.get(f"/api/detectors/{detector.detector_id}/").status_code == 404
    assert client.post(f"/api/detectors/{detector.detector_id}/suspend/").status_code == 404
    assert client.get("/api/detectors/").json() == [d for d in client.get("/api/detectors/").json()
                                                     if d["account_id"] != aid]


def test_member_cannot_act_on_administrator_settings(api, factory):
    admin_account, _, member_account, member_user = factory.organisation()
    client = _bearer(api, member_user)
    detector = member_account.detectors.get()
    r = client.patch(f"/api/detectors/{detector.detector_id}/", {"finding_publishing_frequency": "ONE_HOUR"},
                     format="json")
    assert r.status_code == 403 and "administrator" in r.json()["detail"]
    # The member cannot see or touch the administrator's records.
    assert client.get(f"/api/accounts/{admin_account.aws_account_id}/members/").status_code == 404


def test_detector_lifecycle_over_api(api, factory):
    user = factory.user()
    factory.account(admin=user, aws_account_id="123456789012", region=None)
    client = _bearer(api, user)
    r = client.post("/api/detectors/", {"account_id": "123456789012", "region": "us-west-2",
                                        "finding_publishing_frequency": "ONE_HOUR"}, format="json")
    assert r.status_code == 201
    detector_id = r.json()["detector_id"]
    assert client.post("/api/detectors/", {"account_id": "123456789012", "region": "us-west-2"},
                       format="json").status_code == 409
    assert client.post(f"/api/detectors/{detector_id}/suspend/").json()["status"] == "SUSPENDED"
    assert client.post(f"/api/detectors/{detector_id}/resume/").json()["status"] == "ENABLED"
    r = client.patch(f"/api/detectors/{detector_id}/", {"data_sources": {"dns_logs": False}}, format="json")
    assert r.json()["data_sources"]["dns_logs"] is False
    assert client.delete(f"/api/detectors/{detector_id}/", {"confirm": "nope"}, format="json").status_code == 400
    assert client.delete(f"/api/detectors/{detector_id}/", {"confirm": detector_id}, format="json").status_code == 204
    assert not Detector.objects.filter(detector_id=detector_id).exists()


def test_bulk_limit_over_api(api, factory):
    user = factory.user()
    account = factory.account(admin=user)
    ids = [str(700000000000 + i) for i in range(51)]
    r = _bearer(api, user).post(f"/api/accounts/{account.aws_account_id}/members/invite/", {"account_ids": ids},
                                format="json")
    assert r.status_code == 400


def test_openapi_schema_served(client, factory):
    client.force_login(factory.user())
    response = client.get("/api/schema/")
    assert response.status_code == 200 and b"/api/accounts/" in response.content
