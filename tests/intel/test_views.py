"""The threat lists page over HTTP: upload, status and counts, rejected lines, replace, delete,
the indicator check, and refusals."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from intel.models import IntelSet


@pytest.fixture
def org(factory):
    return factory.organisation()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client, name="Bad", body=b"198.51.100.0/24\nexample.net\n2001:db8::1\nnot valid!\n", kind="THREAT",
           fmt="TXT", **extra):
    return client.post(reverse("intel:create"), {
        "name": name, "kind": kind, "format": fmt, "activate": "on",
        "file": SimpleUploadedFile("list.txt", body), **extra,
    })


def test_upload_activate_and_page_shows_counts(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    client = login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client)
    assert response.status_code == 302
    page = client.get(reverse("intel:list")).content.decode()
    assert "Bad" in page and "ACTIVE" in page and "1 line rejected" in page
    assert "TorExitNodes" in page  # built-in feeds listed
    s = IntelSet.objects.get(name="Bad")
    detail = client.get(reverse("intel:detail", args=[s.set_id])).content.decode()
    assert "not an IP address, CIDR or domain name: &#x27;not valid!&#x27;" in detail
    assert "3 entries (1 IPs of which 1 IPv6, 1 CIDRs, 1 domains)" in detail


def test_htmx_partial_polls_while_activating(org):
    admin_account, admin_user, *_ = org
    client = login(admin_user)
    upload(client)  # the on-commit task is not run here: the list stays ACTIVATING
    response = client.get(reverse("intel:list"), HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 2s"' in body and "<html" not in body


def test_bad_upload_shows_the_reason_and_keeps_nothing_active(org, django_capture_on_commit_callbacks):
    _, admin_user, *_ = org
    client = login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, body=b"Indicator type, Indicator, Description\nIPv4, 192.0.2.1, x\n")
    s = IntelSet.objects.get(name="Bad")
    assert s.status == "ERROR"
    page = client.get(reverse("intel:list")).content.decode()
    assert "This file looks like OTX_CSV, not TXT." in page


def test_form_refusals(org):
    _, admin_user, *_ = org
    client = login(admin_user)
    response = client.post(reverse("intel:create"), {"name": "X", "kind": "THREAT", "format": "TXT",
                                                     "location": "https://example.com/x.txt"})
    assert response.status_code == 400
    assert "The location must be an S3 URI" in response.content.decode()
    response = client.post(reverse("intel:create"), {"name": "X", "kind": "THREAT", "format": "TXT"})
    assert response.status_code == 400 and "Give either a file or an s3:// location." in response.content.decode()


def test_seventh_list_refused_on_the_page(org):
    _, admin_user, *_ = org
    client = login(admin_user)
    for i in range(6):
        assert client.post(reverse("intel:create"), {"name": f"L{i}", "kind": "THREAT", "format": "TXT",
                                                     "file": SimpleUploadedFile("l.txt", b"192.0.2.1\n")}).status_code == 302
    response = client.post(reverse("intel:create"), {"name": "L7", "kind": "THREAT", "format": "TXT",
                                                     "file": SimpleUploadedFile("l.txt", b"192.0.2.1\n")})
    assert response.status_code == 409 and "already has 6 threat lists in us-east-1" in response.content.decode()


def test_replace_deactivate_delete(org, django_capture_on_commit_callbacks):
    _, admin_user, *_ = org
    client = login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client)
    s = IntelSet.objects.get(name="Bad")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("intel:replace", args=[s.set_id]),
                               {"format": "TXT", "file": SimpleUploadedFile("v2.txt", b"203.0.113.1\n")})
    assert response.status_code == 302
    s.refresh_from_db()
    assert s.status == "ACTIVE" and s.active_version.number == 2 and s.active_version.counts["ip"] == 1
    client.post(reverse("intel:action", args=[s.set_id]), {"action": "deactivate"})
    assert IntelSet.objects.get(id=s.id).status == "INACTIVE"
    client.post(reverse("intel:action", args=[s.set_id]), {"action": "delete"})
    assert IntelSet.objects.get(id=s.id).status == "DELETED"
    assert f'data-set="{s.set_id}"' not in client.get(reverse("intel:list")).content.decode()


def test_member_sees_read_only_and_cannot_change(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = org
    with django_capture_on_commit_callbacks(execute=True):
        upload(login(admin_user))
    s = IntelSet.objects.get(name="Bad")
    client = login(member_user)
    page = client.get(reverse("intel:list")).content.decode()
    assert "Bad" in page and "only the administrator can change them" in page
    assert 'name="action"' not in page and "intel-create-form" not in page
    assert upload(client, name="Mine").status_code == 403
    assert client.post(reverse("intel:action", args=[s.set_id]), {"action": "delete"}).status_code == 403
    assert IntelSet.objects.get(id=s.id).status == "ACTIVE"


def test_stranger_gets_404(org, factory, django_capture_on_commit_callbacks):
    _, admin_user, *_ = org
    with django_capture_on_commit_callbacks(execute=True):
        upload(login(admin_user))
    s = IntelSet.objects.get(name="Bad")
    stranger = factory.user()
    factory.account(admin=stranger)
    client = login(stranger)
    assert client.get(reverse("intel:detail", args=[s.set_id])).status_code == 404
    assert client.post(reverse("intel:action", args=[s.set_id]), {"action": "delete"}).status_code == 404
    assert client.post(reverse("intel:replace", args=[s.set_id]), {"format": "TXT"}).status_code == 404
    assert "Bad" not in client.get(reverse("intel:list")).content.decode()


def test_check_an_indicator(org, django_capture_on_commit_callbacks):
    _, admin_user, *_ = org
    client = login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        upload(client)
        upload(client, name="Office", kind="TRUSTED", body=b"198.51.100.9\n")
    body = client.get(reverse("intel:check"), {"value": "a.b.example.net"}, HTTP_HX_REQUEST="true").content.decode()
    assert "would produce a finding" in body and "Bad" in body and "<html" not in body
    body = client.get(reverse("intel:check"), {"value": "198.51.100.9"}).content.decode()
    assert "on the trusted list <strong>Office</strong>" in body
    body = client.get(reverse("intel:check"), {"value": "pool.minexmr.com"}).content.decode()
    assert "CryptoMiningPools" in body and "crypto_mining" in body
    body = client.get(reverse("intel:check"), {"value": "<script>x</script>.com"}).content.decode()
    assert "<script>x</script>" not in body and "on no list" in body


def test_form_formats_are_the_model_formats():
    from intel.forms import FORMAT_CHOICES

    assert [value for value, _ in FORMAT_CHOICES] == IntelSet.Format.values
