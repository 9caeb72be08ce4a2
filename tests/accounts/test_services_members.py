"""Every administrator/member transition and every refusal, through the service layer."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AuditEvent, Member, RelationshipStatus, Role
from console.errors import ConflictError, NotFoundError, PermissionDeniedError, ServiceError

S = RelationshipStatus


def _status(administrator, member) -> str:
    return Member.objects.get(administrator=administrator, member=member).relationship_status


@pytest.fixture
def pair(factory, django_capture_on_commit_callbacks):
    admin_user, member_user = factory.user("alice"), factory.user("bob")
    admin_account = factory.account(aws_account_id="111111111111", admin=admin_user)
    member_account = factory.account(aws_account_id="222222222222", admin=member_user, email="bob@example.com")
    return admin_account, admin_user, member_account, member_user


def _invite(admin_account, admin_user, member_id, capture, email="bob@example.com"):
    services.member_create(actor=admin_user, administrator=admin_account,
                           account_details=[{"account_id": member_id, "email": email}])
    with capture(execute=True):
        return services.member_invite(actor=admin_user, administrator=admin_account, account_ids=[member_id],
                                      message="Join us")


def test_member_create_records_created_status(pair):
    admin_account, admin_user, member_account, _ = pair
    unprocessed = services.member_create(actor=admin_user, administrator=admin_account,
                                         account_details=[{"account_id": "222222222222", "email": "bob@example.com"}])
    assert unprocessed == []
    assert _status(admin_account, member_account) == S.CREATED
    assert AuditEvent.objects.filter(account=admin_account, action="member.created").exists()


def test_member_create_unknown_account_registers_it(pair):
    admin_account, admin_user, *_ = pair
    services.member_create(actor=admin_user, administrator=admin_account,
                           account_details=[{"account_id": "999999999999", "email": "new@example.com"}])
    record = Member.objects.get(member__aws_account_id="999999999999")
    assert record.relationship_status == S.CREATED
    assert record.member.email == "new@example.com"


def test_invite_verifies_email_then_invited(pair, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, _ = pair
    assert _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks) == []
    record = Member.objects.get(member=member_account)
    assert record.relationship_status == S.INVITED
    assert record.invitation_id and record.invited_at and record.invitation_message == "Join us"


def test_invite_with_wrong_email_fails_verification(pair, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, _ = pair
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks, email="mallory@example.com")
    assert _status(admin_account, member_account) == S.EMAIL_VERIFICATION_FAILED


def test_invite_before_verification_is_in_progress(pair):
    admin_account, admin_user, member_account, _ = pair
    services.member_create(actor=admin_user, administrator=admin_account,
                           account_details=[{"account_id": "222222222222", "email": "bob@example.com"}])
    services.member_invite(actor=admin_user, administrator=admin_account, account_ids=["222222222222"])
    assert _status(admin_account, member_account) == S.EMAIL_VERIFICATION_IN_PROGRESS


def test_accept_enables_relationship_on_both_sides(pair, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks)
    record = Member.objects.get(member=member_account)
    services.invitation_accept(actor=member_user, member_account=member_account,
                               administrator_aws_id="111111111111", invitation_id=record.invitation_id)
    assert _status(admin_account, member_account) == S.ENABLED
    assert AuditEvent.objects.filter(account=member_account, action="invitation.accepted").exists()
    assert AuditEvent.objects.filter(account=admin_account, action="invitation.accepted").exists()


def test_accept_with_wrong_invitation_id_refused(pair, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks)
    with pytest.raises(ServiceError, match="invitation id"):
        services.invitation_accept(actor=member_user, member_account=member_account,
                                   administrator_aws_id="111111111111", invitation_id="0" * 32)
    assert _status(admin_account, member_account) == S.INVITED


def test_accept_without_invitation_refused(pair):
    _, _, member_account, member_user = pair
    with pytest.raises(NotFoundError):
        services.invitation_accept(actor=member_user, member_account=member_account,
                                   administrator_aws_id="111111111111", invitation_id="x")


def test_second_administrator_refused(pair, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    other_user = factory.user("carol")
    other_admin = factory.account(aws_account_id="333333333333", admin=other_user)
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks)
    _invite(other_admin, other_user, "222222222222", django_capture_on_commit_callbacks)
    first = Member.objects.get(administrator=admin_account, member=member_account)
    services.invitation_accept(actor=member_user, member_account=member_account,
                               administrator_aws_id="111111111111", invitation_id=first.invitation_id)
    second = Member.objects.get(administrator=other_admin, member=member_account)
    with pytest.raises(ConflictError, match="already has an administrator"):
        services.invitation_accept(actor=member_user, member_account=member_account,
                                   administrator_aws_id="333333333333", invitation_id=second.invitation_id)
    assert _status(other_admin, member_account) == S.INVITED


def test_second_administrator_refused_by_database_constraint(pair, factory):
    from django.db import IntegrityError, transaction

    admin_account, _, member_account, _ = pair
    other_admin = factory.account(aws_account_id="333333333333")
    factory.associate(admin_account, member_account)
    with pytest.raises(IntegrityError), transaction.atomic():
        factory.associate(other_admin, member_account)


def test_self_invite_refused(pair):
    admin_account, admin_user, *_ = pair
    unprocessed = services.member_create(actor=admin_user, administrator=admin_account,
                                         account_details=[{"account_id": "111111111111", "email": "a@example.com"}])
    assert [u.result for u in unprocessed] == ["An account cannot be a member of itself."]
    assert not Member.objects.exists()


def test_self_membership_refused_by_database(pair):
    from django.db import IntegrityError, transaction

    admin_account, *_ = pair
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(administrator=admin_account, member=admin_account, email="a@example.com")


def test_administrator_cannot_become_member(pair, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    # 333 invites 111 while 111 has no members; 111 then becomes an administrator of 222.
    other_user = factory.user("carol")
    other_admin = factory.account(aws_account_id="333333333333", admin=other_user)
    _invite(other_admin, other_user, "111111111111", django_capture_on_commit_callbacks, email=admin_account.email)
    factory.associate(admin_account, member_account)
    record = Member.objects.get(administrator=other_admin, member=admin_account)
    with pytest.raises(ConflictError, match="administrator of other accounts"):
        services.invitation_accept(actor=admin_user, member_account=admin_account,
                                   administrator_aws_id="333333333333", invitation_id=record.invitation_id)
    assert record.relationship_status == S.INVITED


def test_member_cannot_add_members(pair, factory):
    admin_account, _, member_account, member_user = pair
    factory.associate(admin_account, member_account)
    with pytest.raises(ConflictError, match="member of another administrator"):
        services.member_create(actor=member_user, administrator=member_account,
                               account_details=[{"account_id": "444444444444", "email": "d@example.com"}])


def test_adding_an_administrator_as_member_is_unprocessed(pair, factory):
    admin_account, admin_user, member_account, _ = pair
    factory.associate(admin_account, member_account)
    other_user = factory.user("carol")
    other_admin = factory.account(aws_account_id="333333333333", admin=other_user)
    unprocessed = services.member_create(actor=other_user, administrator=other_admin,
                                         account_details=[{"account_id": "111111111111", "email": "x@example.com"}])
    assert unprocessed[0].result == "The account is an administrator of other accounts."


def test_decline_marks_resigned(pair, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks)
    assert services.invitation_decline(actor=member_user, member_account=member_account,
                                       administrator_aws_ids=["111111111111"]) == []
    assert _status(admin_account, member_account) == S.RESIGNED


def test_delete_invitation(pair, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks)
    services.invitation_delete(actor=member_user, member_account=member_account, administrator_aws_ids=["111111111111"])
    record = Member.objects.get(member=member_account)
    assert record.relationship_status == S.RESIGNED and record.invitation_id == ""


def test_stop_and_start_monitoring(pair, factory):
    admin_account, admin_user, member_account, _ = pair
    factory.associate(admin_account, member_account)
    assert services.member_monitoring_stop(actor=admin_user, administrator=admin_account, account_ids=["222222222222"]) == []
    assert _status(admin_account, member_account) == S.DISABLED
    assert services.member_monitoring_start(actor=admin_user, administrator=admin_account, account_ids=["222222222222"]) == []
    assert _status(admin_account, member_account) == S.ENABLED


def test_start_monitoring_an_enabled_member_is_unprocessed(pair, factory):
    admin_account, admin_user, member_account, _ = pair
    factory.associate(admin_account, member_account)
    unprocessed = services.member_monitoring_start(actor=admin_user, administrator=admin_account,
                                                   account_ids=["222222222222"])
    assert "Enabled" in unprocessed[0].result


def test_administrator_disassociates_member(pair, factory):
    admin_account, admin_user, member_account, _ = pair
    factory.associate(admin_account, member_account)
    services.member_disassociate(actor=admin_user, administrator=admin_account, account_ids=["222222222222"])
    assert _status(admin_account, member_account) == S.REMOVED


def test_member_disassociates_from_administrator(pair, factory):
    admin_account, _, member_account, member_user = pair
    factory.associate(admin_account, member_account)
    services.administrator_disassociate(actor=member_user, member_account=member_account)
    assert _status(admin_account, member_account) == S.RESIGNED


def test_member_without_administrator_cannot_disassociate(pair):
    _, _, member_account, member_user = pair
    with pytest.raises(NotFoundError):
        services.administrator_disassociate(actor=member_user, member_account=member_account)


def test_delete_associated_member_refused_then_allowed_after_disassociate(pair, factory):
    admin_account, admin_user, member_account, _ = pair
    factory.associate(admin_account, member_account)
    unprocessed = services.member_delete(actor=admin_user, administrator=admin_account, account_ids=["222222222222"])
    assert "Enabled" in unprocessed[0].result
    services.member_disassociate(actor=admin_user, administrator=admin_account, account_ids=["222222222222"])
    assert services.member_delete(actor=admin_user, administrator=admin_account, account_ids=["222222222222"]) == []
    assert not Member.objects.exists()


def test_removed_member_can_be_invited_again(pair, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    factory.associate(admin_account, member_account)
    services.member_disassociate(actor=admin_user, administrator=admin_account, account_ids=["222222222222"])
    with django_capture_on_commit_callbacks(execute=True):
        services.member_invite(actor=admin_user, administrator=admin_account, account_ids=["222222222222"])
    assert _status(admin_account, member_account) == S.INVITED


def test_operations_on_non_members_are_unprocessed(pair):
    admin_account, admin_user, *_ = pair
    unprocessed = services.member_monitoring_stop(actor=admin_user, administrator=admin_account,
                                                  account_ids=["555555555555"])
    assert unprocessed[0].result == "The account is not a member of this administrator."


def test_bulk_limit_of_fifty(pair):
    admin_account, admin_user, *_ = pair
    details = [{"account_id": f"{700000000000 + i}", "email": f"m{i}@example.com"} for i in range(51)]
    with pytest.raises(ServiceError, match="At most 50"):
        services.member_create(actor=admin_user, administrator=admin_account, account_details=details)


def test_member_quota(pair, settings):
    admin_account, admin_user, *_ = pair
    settings.VIGIL_MAX_MEMBERS_PER_ADMINISTRATOR = 2
    details = [{"account_id": f"{700000000000 + i}", "email": f"m{i}@example.com"} for i in range(3)]
    unprocessed = services.member_create(actor=admin_user, administrator=admin_account, account_details=details)
    assert len(unprocessed) == 1 and "maximum of 2" in unprocessed[0].result


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_non_admin_roles_cannot_invite(pair, factory, role):
    admin_account, *_ = pair
    person = factory.user()
    factory.grant(person, admin_account, role)
    with pytest.raises(PermissionDeniedError):
        services.member_create(actor=person, administrator=admin_account,
                               account_details=[{"account_id": "222222222222", "email": "bob@example.com"}])


def test_user_of_another_account_cannot_act_for_it(pair, factory):
    admin_account, *_ = pair
    stranger = factory.user("eve")
    factory.account(admin=stranger)
    with pytest.raises(NotFoundError):
        services.member_create(actor=stranger, administrator=admin_account,
                               account_details=[{"account_id": "222222222222", "email": "bob@example.com"}])
    with pytest.raises(NotFoundError):
        services.member_invite(actor=stranger, administrator=admin_account, account_ids=["222222222222"])


def test_member_admin_cannot_accept_for_administrator_side(pair, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = pair
    _invite(admin_account, admin_user, "222222222222", django_capture_on_commit_callbacks)
    record = Member.objects.get(member=member_account)
    # The administrator's admin cannot accept on the member's behalf.
    with pytest.raises(NotFoundError):
        services.invitation_accept(actor=admin_user, member_account=member_account,
                                   administrator_aws_id="111111111111", invitation_id=record.invitation_id)
