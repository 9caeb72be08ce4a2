"""Detectors: create, settings, suspend/resume, disable, and GuardDuty's administrator rules."""

from __future__ import annotations

import pytest

from accounts import services
from accounts.models import AuditEvent, Detector, Role
from console.errors import ConflictError, NotFoundError, PermissionDeniedError, ServiceError


def test_create_detector_once_per_region(factory):
    user = factory.user()
    account = factory.account(admin=user, region=None)
    detector = services.detector_create(actor=user, account=account, region="eu-west-1")
    assert detector.is_enabled and len(detector.detector_id) == 32
    with pytest.raises(ConflictError):
        services.detector_create(actor=user, account=account, region="eu-west-1")


def test_create_detector_unknown_region(factory):
    user = factory.user()
    account = factory.account(admin=user, region=None)
    with pytest.raises(ServiceError, match="Unknown region"):
        services.detector_create(actor=user, account=account, region="mars-north-1")


def test_suspend_and_resume_keep_detector(factory):
    user = factory.user()
    account = factory.account(admin=user)
    detector = account.detectors.get()
    services.detector_suspend(actor=user, detector=detector)
    assert Detector.objects.get(id=detector.id).status == Detector.Status.SUSPENDED
    services.detector_resume(actor=user, detector=detector)
    assert Detector.objects.get(id=detector.id).status == Detector.Status.ENABLED
    actions = list(AuditEvent.objects.filter(account=account).values_list("action", flat=True))
    assert "detector.suspended" in actions and "detector.resumed" in actions


def test_disable_requires_confirmation_and_deletes(factory):
    user = factory.user()
    account = factory.account(admin=user)
    detector = account.detectors.get()
    with pytest.raises(ServiceError, match="confirm"):
        services.detector_delete(actor=user, detector=detector, confirm="yes")
    services.detector_delete(actor=user, detector=detector, confirm=detector.detector_id)
    assert not Detector.objects.filter(id=detector.id).exists()


def test_administrator_must_remove_members_before_suspend_or_disable(factory):
    admin_account, admin_user, member_account, _ = factory.organisation()
    detector = admin_account.detectors.get()
    with pytest.raises(ConflictError, match="disassociate and delete its members"):
        services.detector_suspend(actor=admin_user, detector=detector)
    with pytest.raises(ConflictError):
        services.detector_delete(actor=admin_user, detector=detector, confirm=detector.detector_id)
    services.member_disassociate(actor=admin_user, administrator=admin_account, account_ids=[member_account.aws_account_id])
    services.detector_suspend(actor=admin_user, detector=detector)
    assert Detector.objects.get(id=detector.id).status == Detector.Status.SUSPENDED


def test_member_cannot_set_publishing_frequency(factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    with pytest.raises(PermissionDeniedError, match="administrator sets the publishing frequency"):
        services.detector_update(actor=member_user, detector=member_account.detectors.get(),
                                 finding_publishing_frequency="ONE_HOUR")


def test_administrator_frequency_applies_to_members(factory):
    admin_account, admin_user, member_account, _ = factory.organisation()
    services.detector_update(actor=admin_user, detector=admin_account.detectors.get(),
                             finding_publishing_frequency="FIFTEEN_MINUTES")
    assert member_account.detectors.get().finding_publishing_frequency == "FIFTEEN_MINUTES"


def test_data_source_toggles(factory):
    user = factory.user()
    detector = factory.account(admin=user).detectors.get()
    services.detector_update(actor=user, detector=detector, data_sources={"flow_logs": False})
    detector.refresh_from_db()
    assert not detector.flow_logs_enabled and detector.cloudtrail_enabled
    with pytest.raises(ServiceError, match="Unknown data source"):
        services.detector_update(actor=user, detector=detector, data_sources={"eks": True})


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_only_admins_manage_detectors(factory, role):
    account = factory.account()
    person = factory.user()
    factory.grant(person, account, role)
    with pytest.raises(PermissionDeniedError):
        services.detector_suspend(actor=person, detector=account.detectors.get())


def test_administrator_cannot_suspend_member_detector_directly(factory):
    _, admin_user, member_account, _ = factory.organisation()
    # The administrator sees the member but holds no role in it: GuardDuty has it disassociate instead.
    with pytest.raises(NotFoundError):
        services.detector_suspend(actor=admin_user, detector=member_account.detectors.get())


def test_account_create_makes_creator_admin(factory):
    user = factory.user()
    account = services.account_create(actor=user, aws_account_id="123456789012", name="Prod",
                                      role_arn="arn:aws:iam::123456789012:role/VigilReader")
    assert account.memberships.get().role == Role.ADMIN
    with pytest.raises(ConflictError):
        services.account_create(actor=factory.user(), aws_account_id="123456789012", name="Again")


@pytest.mark.parametrize("bad", ["12345", "abcdefghijkl", "1234567890123"])
def test_account_create_rejects_bad_ids(factory, bad):
    with pytest.raises(ServiceError, match="12 digits"):
        services.account_create(actor=factory.user(), aws_account_id=bad, name="x")


def test_account_create_rejects_bad_role_arn(factory):
    with pytest.raises(ServiceError, match="role ARN"):
        services.account_create(actor=factory.user(), aws_account_id="123456789012", name="x", role_arn="https://evil")
