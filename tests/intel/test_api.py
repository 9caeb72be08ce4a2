"""The REST API mirrors GuardDuty's IPSet / ThreatIntelSet operations, scoped by detector and tenant."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from intel.models import IntelSet


@pytest.fixture
def org(factory):
    return factory.organisation()


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def sets_url(account, collection="threat-intel-sets"):
    return reverse("api-intel-sets", kwargs={"detector_id": account.detectors.get().detector_id, "collection": collection})


def set_url(account, set_id, collection="threat-intel-sets"):
    return reverse("api-intel-set", kwargs={"detector_id": account.detectors.get().detector_id,
                                            "collection": collection, "set_id": set_id})


def test_create_get_list_update_delete(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    client = api(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(sets_url(admin_account), {"name": "Bad", "format": "TXT", "activate": True,
                                                         "content": "192.0.2.0/24\nbad.example\noops!\n"}, format="json")
    assert response.status_code == 200, response.content
    set_id = response.json()["threatIntelSetId"]
    got = client.get(set_url(admin_account, set_id)).json()
    assert got["name"] == "Bad" and got["status"] == "ACTIVE" and got["format"] == "TXT"
    assert got["counts"] == {"ip": 0, "cidr": 1, "domain": 1, "ipv6": 0}
    assert got["rejectedTotal"] == 1 and got["rejected"][0]["line"] == 3
    listed = client.get(sets_url(admin_account)).json()
    assert listed["threatIntelSetIds"] == [set_id]
    assert client.get(sets_url(admin_account, "ip-sets")).json()["ipSetIds"] == []
    # Update: rename and deactivate (GuardDuty's UpdateThreatIntelSet with Activate=false).
    updated = client.post(set_url(admin_account, set_id), {"name": "Renamed", "activate": False}, format="json").json()
    assert updated["name"] == "Renamed" and updated["status"] == "INACTIVE"
    assert client.delete(set_url(admin_account, set_id)).status_code == 200
    assert client.get(set_url(admin_account, set_id)).status_code == 404


def test_trusted_ip_set_and_second_refused(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    client = api(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(sets_url(admin_account, "ip-sets"),
                               {"name": "Office", "format": "TXT", "activate": True, "content": "192.0.2.1\n"},
                               format="json")
    assert "ipSetId" in response.json()
    again = client.post(sets_url(admin_account, "ip-sets"),
                        {"name": "Office2", "format": "TXT", "activate": True, "content": "192.0.2.2\n"}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "conflict"
    # A trusted list id is not a threat list id.
    assert client.get(set_url(admin_account, response.json()["ipSetId"])).status_code == 404


def test_multipart_upload_and_pagination(org):
    admin_account, admin_user, *_ = org
    client = api(admin_user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    for i in range(3):
        r = client.post(sets_url(admin_account), {"name": f"L{i}", "format": "TXT", "activate": "false",
                                                  "file": SimpleUploadedFile("l.txt", b"192.0.2.1\n")}, format="multipart")
        assert r.status_code == 200, r.content
    first = client.get(sets_url(admin_account), {"maxResults": 2}).json()
    assert len(first["threatIntelSetIds"]) == 2 and first["nextToken"] == "2"
    second = client.get(sets_url(admin_account), {"maxResults": 2, "nextToken": first["nextToken"]}).json()
    assert len(second["threatIntelSetIds"]) == 1 and "nextToken" not in second


def test_member_admin_cannot_create_but_reads(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = org
    with django_capture_on_commit_callbacks(execute=True):
        set_id = api(admin_user).post(sets_url(admin_account), {"name": "Bad", "format": "TXT", "activate": True,
                                                                "content": "192.0.2.1\n"}, format="json").json()["threatIntelSetId"]
    client = api(member_user)
    refused = client.post(sets_url(member_account), {"name": "Mine", "format": "TXT", "activate": True,
                                                     "content": "192.0.2.9\n"}, format="json")
    assert refused.status_code == 403
    assert "only the administrator account can manage threat and trusted lists" in refused.json()["detail"]
    # Through its own detector, the member reads the administrator's lists that apply to it.
    assert client.get(sets_url(member_account)).json()["threatIntelSetIds"] == [set_id]
    assert client.get(set_url(member_account, set_id)).json()["name"] == "Bad"
    assert client.delete(set_url(member_account, set_id)).status_code == 403
    assert IntelSet.objects.filter(account=member_account).count() == 0
    check = client.get(reverse("api-intel-check", kwargs={"detector_id": member_account.detectors.get().detector_id}),
                       {"value": "192.0.2.1"}).json()
    assert check["finding"] and check["hits"][0]["list_name"] == "Bad"


def test_unrelated_user_gets_404_everywhere(org, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    with django_capture_on_commit_callbacks(execute=True):
        set_id = api(admin_user).post(sets_url(admin_account), {"name": "Bad", "format": "TXT", "activate": True,
                                                                "content": "192.0.2.1\n"}, format="json").json()["threatIntelSetId"]
    stranger = factory.user()
    own = factory.account(admin=stranger)
    client = api(stranger)
    assert client.get(sets_url(admin_account)).status_code == 404
    assert client.post(sets_url(admin_account), {"name": "X", "format": "TXT", "activate": True,
                                                 "content": "1.2.3.4\n"}, format="json").status_code == 404
    assert client.get(set_url(admin_account, set_id)).status_code == 404
    assert client.delete(set_url(admin_account, set_id)).status_code == 404
    # The id exists, but not under the stranger's own detector either.
    assert client.get(set_url(own, set_id)).status_code == 404
    check = reverse("api-intel-check", kwargs={"detector_id": admin_account.detectors.get().detector_id})
    assert client.get(check, {"value": "192.0.2.1"}).status_code == 404
    assert IntelSet.objects.get(set_id=set_id).status == "ACTIVE"


def test_viewer_cannot_create(factory):
    user = factory.user()
    account = factory.account(admin=user, role="viewer")
    response = api(user).post(sets_url(account), {"name": "X", "format": "TXT", "activate": True,
                                                  "content": "1.2.3.4\n"}, format="json")
    assert response.status_code == 403


def test_bad_requests(org):
    admin_account, admin_user, *_ = org
    client = api(admin_user)
    assert client.post(sets_url(admin_account), {"name": "X", "format": "XML", "activate": True}, format="json").status_code == 400
    r = client.post(sets_url(admin_account), {"name": "X", "format": "TXT", "activate": True,
                                              "location": "http://169.254.169.254/"}, format="json")
    assert r.status_code == 400 and "S3 URI" in r.json()["detail"]
    assert client.get(sets_url(admin_account, "nope")).status_code == 404
    check = reverse("api-intel-check", kwargs={"detector_id": admin_account.detectors.get().detector_id})
    assert client.get(check).status_code == 400
