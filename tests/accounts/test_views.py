"""The console pages over HTTP: full pages, HTMX partials, refusals with their status codes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.middleware import SESSION_ACCOUNT
from accounts.models import Detector, Member, RelationshipStatus, Role


@pytest.fixture
def org(factory):
    return factory.organisation()


def _login(client, user, account=None):
    client.force_login(user)
    if account is not None:
        session = client.session
        session[SESSION_ACCOUNT] = account.id
        session.save()
    return client


@pytest.mark.parametrize("name", ["accounts:list", "accounts:invitations", "accounts:detectors", "accounts:settings",
                                  "accounts:create"])
def test_pages_require_login(client, db, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200 and b"Sign in" in response.content
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_account_list_shows_members(client, org):
    admin_account, admin_user, member_account, _ = org
    response = _login(client, admin_user, admin_account).get(reverse("accounts:list"))
    assert response.status_code == 200
    assert member_account.aws_account_id.encode() in response.content
    assert b"Enabled" in response.content


def test_account_list_htmx_returns_partial(client, org):
    admin_account, admin_user, *_ = org
    response = _login(client, admin_user, admin_account).get(reverse("accounts:list"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'<section id="members"' in response.content and b"<html" not in response.content


def test_add_and_invite_member_over_http(client, factory, django_capture_on_commit_callbacks):
    admin_user = factory.user()
    admin_account = factory.account(admin=admin_user)
    target = factory.account(email="t@example.com")
    _login(client, admin_user, admin_account)
    response = client.post(reverse("accounts:member_add"), {"account_id": target.aws_account_id, "email": "t@example.com"})
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("accounts:member_action"),
                               {"action": "invite", "account_ids": [target.aws_account_id], "message": "hi"})
    assert response.status_code == 302
    assert Member.objects.get(member=target).relationship_status == RelationshipStatus.INVITED


def test_add_member_validation_message(client, factory):
    admin_user = factory.user()
    admin_account = factory.account(admin=admin_user)
    response = _login(client, admin_user, admin_account).post(
        reverse("accounts:member_add"), {"account_id": "123", "email": "x@example.com"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert b"12 digits" in response.content


def test_add_member_csv(client, factory):
    admin_user = factory.user()
    admin_account = factory.account(admin=admin_user)
    csv = "Account ID,Email\n444444444444,a@example.com\n555555555555,b@example.com\n"
    _login(client, admin_user, admin_account).post(reverse("accounts:member_add"), {"csv": csv})
    assert Member.objects.filter(administrator=admin_account).count() == 2


def test_self_invite_over_http_refused(client, factory):
    admin_user = factory.user()
    admin_account = factory.account(admin=admin_user)
    response = _login(client, admin_user, admin_account).post(
        reverse("accounts:member_add"), {"account_id": admin_account.aws_account_id, "email": "x@example.com"})
    assert response.status_code == 400
    assert b"cannot be a member of itself" in response.content


def test_viewer_cannot_invite_over_http(client, factory):
    account = factory.account()
    viewer = factory.user()
    factory.grant(viewer, account, Role.VIEWER)
    response = _login(client, viewer, account).post(
        reverse("accounts:member_add"), {"account_id": "444444444444", "email": "x@example.com"})
    assert response.status_code == 403
    assert not Member.objects.exists()


def test_member_accepts_invitation_over_http(client, factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    record = Member.objects.get()
    record.relationship_status = RelationshipStatus.INVITED
    record.invitation_id = "a" * 32
    record.save()
    _login(client, member_user, member_account)
    page = client.get(reverse("accounts:invitations"))
    assert admin_account.aws_account_id.encode() in page.content
    response = client.post(reverse("accounts:invitation_respond"),
                           {"decision": "accept", "administrator_id": admin_account.aws_account_id,
                            "invitation_id": "a" * 32})
    assert response.status_code == 302
    assert Member.objects.get().relationship_status == RelationshipStatus.ENABLED


def test_second_administrator_refused_over_http(client, factory):
    admin_account, _, member_account, member_user = factory.organisation()
    other = factory.account()
    Member.objects.create(administrator=other, member=member_account, email=member_account.email,
                          relationship_status=RelationshipStatus.INVITED, invitation_id="b" * 32)
    response = _login(client, member_user, member_account).post(
        reverse("accounts:invitation_respond"),
        {"decision": "accept", "administrator_id": other.aws_account_id, "invitation_id": "b" * 32})
    assert response.status_code == 409
    assert b"already has an administrator" in response.content


def test_switching_to_foreign_account_is_ignored(client, factory):
    admin_account, admin_user, *_ = factory.organisation()
    stranger = factory.user()
    stranger_account = factory.account(admin=stranger)
    _login(client, stranger, stranger_account)
    client.post(reverse("accounts:switch"), {"account": admin_account.id})
    assert client.session[SESSION_ACCOUNT] != admin_account.id
    response = client.get(reverse("accounts:list"))
    assert admin_account.aws_account_id.encode() not in response.content


def test_switch_refuses_open_redirect(client, factory):
    user = factory.user()
    factory.account(admin=user)
    response = _login(client, user).post(reverse("accounts:switch"), {"region": "eu-west-1", "next": "//evil.example/"})
    assert response.url == reverse("home")
    assert client.session["active_region"] == "eu-west-1"


def test_foreign_detector_page_is_not_found(client, factory):
    _, _, member_account, _ = factory.organisation()
    stranger = factory.user()
    factory.account(admin=stranger)
    detector = member_account.detectors.get()
    response = _login(client, stranger).get(reverse("accounts:detector", args=[detector.detector_id]))
    assert response.status_code == 404


def test_foreign_detector_cannot_be_suspended(client, factory):
    admin_account, *_ = factory.organisation()
    stranger = factory.user()
    factory.account(admin=stranger)
    detector = admin_account.detectors.get()
    response = _login(client, stranger).post(reverse("accounts:detector", args=[detector.detector_id]), {"op": "suspend"})
    assert response.status_code == 404
    assert Detector.objects.get(id=detector.id).status == Detector.Status.ENABLED


def test_suspend_and_resume_over_http(client, factory):
    user = factory.user()
    account = factory.account(admin=user)
    detector = account.detectors.get()
    url = reverse("accounts:detector", args=[detector.detector_id])
    _login(client, user, account)
    assert client.post(url, {"op": "suspend"}).status_code == 302
    assert Detector.objects.get(id=detector.id).status == "SUSPENDED"
    assert client.post(url, {"op": "resume"}).status_code == 302
    assert Detector.objects.get(id=detector.id).status == "ENABLED"


def test_administrator_suspend_blocked_by_members_over_http(client, factory):
    admin_account, admin_user, *_ = factory.organisation()
    detector = admin_account.detectors.get()
    response = _login(client, admin_user, admin_account).post(
        reverse("accounts:detector", args=[detector.detector_id]), {"op": "suspend"})
    assert response.status_code == 409
    assert b"disassociate and delete its members" in response.content


def test_member_cannot_change_frequency_over_http(client, factory):
    _, _, member_account, member_user = factory.organisation()
    detector = member_account.detectors.get()
    response = _login(client, member_user, member_account).post(
        reverse("accounts:detector", args=[detector.detector_id]),
        {"op": "settings", "finding_publishing_frequency": "ONE_HOUR", "cloudtrail": "on"})
    assert response.status_code == 403


def test_audit_log_visible_to_admins_only(client, factory):
    admin_account, admin_user, member_account, _ = factory.organisation()
    from accounts.events import audit_record

    audit_record(account=admin_account, actor=admin_user, action="member.invited", target="secret-target")
    page = _login(client, admin_user, admin_account).get(reverse("accounts:settings"))
    assert b"secret-target" in page.content
    analyst = factory.user()
    factory.grant(analyst, admin_account, Role.ANALYST)
    client.force_login(analyst)
    assert b"secret-target" not in client.get(reverse("accounts:settings")).content


def test_register_account_over_http(client, factory):
    user = factory.user()
    response = _login(client, user).post(reverse("accounts:create"), {"aws_account_id": "123456789012", "name": "New"})
    assert response.status_code == 302
    assert user.account_memberships.get().account.aws_account_id == "123456789012"


def test_register_account_twice_conflict(client, factory):
    factory.account(aws_account_id="123456789012")
    response = _login(client, factory.user()).post(reverse("accounts:create"),
                                                  {"aws_account_id": "123456789012", "name": "Mine"})
    assert response.status_code == 409


def test_organisation_management_warning(client, factory):
    user = factory.user()
    account = factory.account(admin=user)
    account.is_organization_management = True
    account.save()
    page = _login(client, user, account).get(reverse("accounts:list"))
    assert b"keeping the two apart is the safer practice" in page.content


def test_attacker_strings_are_escaped(client, factory):
    user = factory.user()
    account = factory.account(admin=user, name='<script>alert(1)</script>')
    page = _login(client, user, account).get(reverse("accounts:list"))
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page.content
