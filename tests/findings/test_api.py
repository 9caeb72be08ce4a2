"""The findings REST API: tenancy, criteria, keyset pagination, triage, statistics, export, CRUD."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rest_framework.test import APIClient

from accounts.authentication import api_token_create
from findings.models import Finding
from tests.findings.util import PORT_PROBE, SSH_BRUTE, make_finding


@pytest.fixture
def org(factory, settings):
    settings.VIGIL_DESTINATIONS_ALLOW_HTTP = False
    admin_account, admin_user, member_account, member_user = factory.organisation()
    stranger = factory.user()
    stranger_account = factory.account(admin=stranger)
    return {"admin": admin_user, "admin_account": admin_account, "member": member_user,
            "member_account": member_account, "stranger": stranger, "stranger_account": stranger_account}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_list_is_scoped_paginated_by_keyset_and_filtered_by_criteria(org):
    for i in range(7):
        make_finding(org["member_account"], finding_type=SSH_BRUTE if i % 2 else PORT_PROBE, severity=2 + i)
    make_finding(org["stranger_account"])
    client = _client(org["admin"])
    seen, cursor = [], None
    while True:
        answer = client.get("/api/findings/", {"limit": 3, "sort": "severity", **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200
        seen += [f["id"] for f in answer.json()["findings"]]
        cursor = answer.json()["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7
    criteria = json.dumps({"Criterion": {"type": {"Equals": [SSH_BRUTE]}, "severity": {"GreaterThanOrEqual": 5}}})
    found = client.get("/api/findings/", {"criteria": criteria}).json()["findings"]
    assert {f["type"] for f in found} == {SSH_BRUTE} and all(f["severity"] >= 5 for f in found) and len(found) == 2
    assert client.get("/api/findings/", {"criteria": "{"}).status_code == 400
    assert client.get("/api/findings/", {"limit": 500}).status_code == 400
    assert _client(org["stranger"]).get("/api/findings/").json()["findings"][0]["accountId"] == \
        org["stranger_account"].aws_account_id


def test_token_auth_get_archive_feedback(org):
    f = make_finding(org["member_account"])
    _, secret = api_token_create(user=org["admin"], name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get(f"/api/findings/{f.finding_id}/").json()["id"] == f.finding_id
    assert client.post("/api/findings/archive/", {"finding_ids": [f.finding_id]}, format="json").json() == {"count": 1}
    assert Finding.objects.get(pk=f.pk).archived
    assert client.post("/api/findings/unarchive/", {"finding_ids": [f.finding_id]}, format="json").json() == {"count": 1}
    answer = client.post("/api/findings/feedback/", {"finding_ids": [f.finding_id], "feedback": "USEFUL"}, format="json")
    assert answer.status_code == 200 and Finding.objects.get(pk=f.pk).feedback == "USEFUL"
    member = _client(org["member"])
    refused = member.post("/api/findings/archive/", {"finding_ids": [f.finding_id]}, format="json")
    assert refused.status_code == 403 and "administrator" in refused.json()["detail"]
    assert _client(org["stranger"]).get(f"/api/findings/{f.finding_id}/").status_code == 404
    assert _client(org["stranger"]).post("/api/findings/archive/", {"finding_ids": [f.finding_id]},
                                         format="json").status_code == 404


def test_export_csv_and_json_stream_every_match_and_neutralise_formulas(org):
    make_finding(org["member_account"], title="=HYPERLINK(\"http://evil\")")
    for _ in range(4):
        make_finding(org["admin_account"], finding_type=SSH_BRUTE)
    client = _client(org["admin"])
    response = client.get("/api/findings/export/csv/")
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["id", "severity", "type"] and len(rows) == 6
    assert any(r[3].startswith("'=HYPERLINK") for r in rows[1:])
    data = json.loads(b"".join(client.get("/api/findings/export/json/", {"type": SSH_BRUTE}).streaming_content))
    assert len(data) == 4 and {d["type"] for d in data} == {SSH_BRUTE}
    assert client.get("/api/findings/export/xml/").status_code == 404


def test_filters_crud_and_preview(org):
    make_finding(org["member_account"], finding_type=PORT_PROBE)
    admin = _client(org["admin"])
    body = {"account_id": org["admin_account"].aws_account_id, "name": "probes", "action": "ARCHIVE",
            "criteria": {"Criterion": {"type": {"Equals": [PORT_PROBE]}}}}
    preview = admin.post("/api/findings/filters/preview/", {"account_id": body["account_id"],
                                                            "criteria": body["criteria"]}, format="json")
    assert preview.json() == {"count": 1}
    created = admin.post("/api/findings/filters/", body, format="json")
    assert created.status_code == 201 and created.json()["action"] == "ARCHIVE"
    pk = created.json()["id"]
    assert admin.patch(f"/api/findings/filters/{pk}/", {"rank": 5}, format="json").json()["rank"] == 5
    member = _client(org["member"])
    assert member.get("/api/findings/filters/").json() == []
    assert member.delete(f"/api/findings/filters/{pk}/").status_code == 404
    assert admin.delete(f"/api/findings/filters/{pk}/").status_code == 204
    bad = admin.post("/api/findings/filters/", {**body, "criteria": {"Criterion": {"x": {"Equals": ["y"]}}}},
                     format="json")
    assert bad.status_code == 400 and "not supported" in bad.json()["detail"]


def test_destinations_crud_hides_nothing_across_tenants(org):
    admin = _client(org["admin"])
    created = admin.post("/api/findings/destinations/", {
        "account_id": org["admin_account"].aws_account_id, "name": "siem", "kind": "webhook",
        "url": "https://siem.example.com/hook", "min_severity": 7}, format="json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert "secret" not in created.json()
    assert admin.patch(f"/api/findings/destinations/{pk}/", {"min_severity": 4}, format="json").json()["min_severity"] == 4
    insecure = admin.post("/api/findings/destinations/", {"account_id": org["admin_account"].aws_account_id,
                                                          "name": "plain", "kind": "webhook",
                                                          "url": "http://siem.example.com"}, format="json")
    assert insecure.status_code == 400
    assert _client(org["stranger"]).get(f"/api/findings/destinations/{pk}/").status_code == 404
    assert _client(org["member"]).get("/api/findings/destinations/").json() == []
    assert admin.get(f"/api/findings/destinations/{pk}/deliveries/").json() == []
    assert admin.delete(f"/api/findings/destinations/{pk}/").status_code == 204
