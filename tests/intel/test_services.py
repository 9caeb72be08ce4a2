"""Lists: quotas in the database, who may change them, activation, atomic replacement, S3 sources,
precedence through matcher_for, and a 250,000-entry activation."""

from __future__ import annotations

import time

import pytest
from django.db import IntegrityError, transaction

from accounts.models import AuditEvent, Role
from console.errors import ConflictError, NotFoundError, PermissionDeniedError, ServiceError
from intel import selectors, services
from intel.models import IntelSet

THREAT, TRUSTED = IntelSet.Kind.THREAT, IntelSet.Kind.TRUSTED


@pytest.fixture
def org(factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    return admin_account, admin_user, member_account, member_user


def create(actor, account, name="Bad", content=b"198.51.100.0/24\nevil.example.com\n", kind=THREAT, fmt="TXT",
           region="us-east-1", **kw):
    return services.intel_set_create(actor=actor, account=account, region=region, kind=kind, name=name, fmt=fmt,
                                     content=content, upload_name="list.txt", **kw)


def test_create_activates_and_matcher_uses_it(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, _ = org
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account)
    s.refresh_from_db()
    assert s.status == "ACTIVE" and s.active_version.number == 1
    assert s.active_version.counts == {"ip": 0, "cidr": 1, "domain": 1, "ipv6": 0}
    m = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert m.lookup_ips(["198.51.100.20"])["198.51.100.20"][0].list_name == "Bad"
    # The administrator's lists apply to its members.
    mm = services.matcher_for(account_id=member_account.id, region="us-east-1")
    assert "a.evil.example.com" in mm.lookup_domains(["a.evil.example.com"])
    # ...and only in their region.
    other = services.matcher_for(account_id=admin_account.id, region="eu-west-1")
    assert other.lookup_ips(["198.51.100.20"]) == {}
    actions = list(AuditEvent.objects.filter(account=admin_account).values_list("action", flat=True))
    assert "intel.list_create" in actions and "intel.list_activated" in actions


def test_seventh_threat_list_refused_and_slot_freed_by_delete(org):
    admin_account, admin_user, *_ = org
    made = [create(admin_user, admin_account, name=f"L{i}", activate=False) for i in range(6)]
    with pytest.raises(ConflictError, match="already has 6 threat lists in us-east-1"):
        create(admin_user, admin_account, name="L7", activate=False)
    # Another region has its own quota.
    create(admin_user, admin_account, name="L7", region="eu-west-1", activate=False)
    services.intel_set_delete(actor=admin_user, set_id=made[2].set_id)
    assert create(admin_user, admin_account, name="L7", activate=False).slot == 3


def test_second_trusted_list_refused(org):
    admin_account, admin_user, *_ = org
    create(admin_user, admin_account, name="Ok", kind=TRUSTED, content=b"192.0.2.1\n", activate=False)
    with pytest.raises(ConflictError, match="already has a trusted IP list in us-east-1"):
        create(admin_user, admin_account, name="Ok2", kind=TRUSTED, content=b"192.0.2.2\n", activate=False)


def test_quota_is_enforced_by_the_database(org):
    """Two concurrent creates that pick the same slot: the database refuses the second."""
    admin_account, *_ = org
    IntelSet.objects.create(account=admin_account, region="us-east-1", kind=THREAT, slot=1, name="a", format="TXT")
    with pytest.raises(IntegrityError), transaction.atomic():
        IntelSet.objects.create(account=admin_account, region="us-east-1", kind=THREAT, slot=1, name="b", format="TXT")
    with pytest.raises(IntegrityError), transaction.atomic():
        IntelSet.objects.create(account=admin_account, region="us-east-1", kind=THREAT, slot=7, name="c", format="TXT")
    with pytest.raises(IntegrityError), transaction.atomic():
        IntelSet.objects.create(account=admin_account, region="us-east-1", kind=TRUSTED, slot=2, name="d", format="TXT")


def test_member_admin_cannot_create_update_or_delete(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, member_user = org
    with pytest.raises(PermissionDeniedError, match="only the administrator account can manage threat and trusted lists"):
        create(member_user, member_account)
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account)
    # The member sees the administrator's lists, read only.
    assert [x.set_id for x in selectors.intel_set_list(actor=member_user, account=member_account)] == [s.set_id]
    assert selectors.intel_set_get(actor=member_user, set_id=s.set_id).name == "Bad"
    with pytest.raises(PermissionDeniedError):
        services.intel_set_update(actor=member_user, set_id=s.set_id, activate=False)
    with pytest.raises(PermissionDeniedError):
        services.intel_set_delete(actor=member_user, set_id=s.set_id)


@pytest.mark.parametrize("role", [Role.ANALYST, Role.VIEWER])
def test_non_admin_roles_cannot_create(factory, role):
    user = factory.user()
    account = factory.account(admin=user, role=role)
    with pytest.raises(PermissionDeniedError):
        create(user, account)


def test_unrelated_user_gets_not_found(org, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account)
    stranger = factory.user()
    factory.account(admin=stranger)
    with pytest.raises(NotFoundError):
        selectors.intel_set_get(actor=stranger, set_id=s.set_id)
    with pytest.raises(NotFoundError):
        services.intel_set_update(actor=stranger, set_id=s.set_id, activate=False)
    with pytest.raises(NotFoundError):
        services.intel_set_delete(actor=stranger, set_id=s.set_id)
    with pytest.raises(NotFoundError):
        selectors.intel_set_list(actor=stranger, account=admin_account)
    with pytest.raises(NotFoundError):
        create(stranger, admin_account)


def test_trusted_wins_through_matcher_for(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, _ = org
    with django_capture_on_commit_callbacks(execute=True):
        create(admin_user, admin_account, content=b"203.0.113.0/24\n")
        create(admin_user, admin_account, name="Office", kind=TRUSTED, content=b"203.0.113.7\n")
    m = services.matcher_for(account_id=member_account.id, region="us-east-1")
    assert set(m.lookup_ips(["203.0.113.7", "203.0.113.8"])) == {"203.0.113.8"}
    assert m.trusted_ips(["203.0.113.7", "203.0.113.8"]) == {"203.0.113.7"}
    check = selectors.indicator_check(actor=admin_user, account=admin_account, region="us-east-1", value="203.0.113.7")
    assert check["trusted"] and check["trusted_list"] == "Office" and not check["finding"]
    assert [h["list_name"] for h in check["hits"]] == ["Bad"]


def test_failed_update_keeps_previous_version_in_force(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account, content=b"198.51.100.1\n")
    first = s.__class__.objects.get(id=s.id).active_version_id
    before = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    with django_capture_on_commit_callbacks(execute=True):
        services.intel_set_update(actor=admin_user, set_id=s.set_id, content=b'{"type": "bundle"}',
                                  upload_name="x.json", activate=True)
    s.refresh_from_db()
    assert s.status == "ERROR"
    assert s.error_details == "This file looks like STIX, not TXT. TXT lists hold one IP address, CIDR block or domain per line."
    assert s.active_version_id == first
    after = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert after is before  # nothing changed for detection
    assert "198.51.100.1" in after.lookup_ips(["198.51.100.1"])
    # A good replacement then takes over in one step.
    with django_capture_on_commit_callbacks(execute=True):
        services.intel_set_update(actor=admin_user, set_id=s.set_id, content=b"198.51.100.2\nbad line\n",
                                  upload_name="y.txt", activate=True)
    s.refresh_from_db()
    assert s.status == "ACTIVE" and s.active_version.number == 2 and s.error_details == ""
    assert s.active_version.rejected == [{"line": 2, "reason": "not an IP address, CIDR or domain name: 'bad line'",
                                          "text": "bad line"}]
    m = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert set(m.lookup_ips(["198.51.100.1", "198.51.100.2"])) == {"198.51.100.2"}
    assert s.versions.count() == 1


def test_deactivate_and_busy_refusal(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account, content=b"198.51.100.1\n")
    services.intel_set_update(actor=admin_user, set_id=s.set_id, activate=False)
    assert IntelSet.objects.get(id=s.id).status == "INACTIVE"
    assert services.matcher_for(account_id=admin_account.id, region="us-east-1").lookup_ips(["198.51.100.1"]) == {}
    # Without running the task, the list stays ACTIVATING and refuses further actions.
    services.intel_set_update(actor=admin_user, set_id=s.set_id, activate=True)
    with pytest.raises(ConflictError, match="The list is ACTIVATING"):
        services.intel_set_update(actor=admin_user, set_id=s.set_id, name="Renamed")


def test_validation_messages(org):
    admin_account, admin_user, *_ = org
    with pytest.raises(ServiceError, match="The location must be an S3 URI"):
        services.intel_set_create(actor=admin_user, account=admin_account, region="us-east-1", kind=THREAT,
                                  name="X", fmt="TXT", location="https://evil.example/list.txt")
    with pytest.raises(ServiceError, match="The location must be an S3 URI"):
        services.intel_set_create(actor=admin_user, account=admin_account, region="us-east-1", kind=THREAT,
                                  name="X", fmt="TXT", location="http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ServiceError, match="A list name is 1 to 300"):
        create(admin_user, admin_account, name="bad/name")
    with pytest.raises(ServiceError, match="Unknown format 'CSV'"):
        create(admin_user, admin_account, fmt="CSV")
    with pytest.raises(ServiceError, match=r"Give either a file or an s3:// location\."):
        services.intel_set_create(actor=admin_user, account=admin_account, region="us-east-1", kind=THREAT,
                                  name="X", fmt="TXT")


def test_s3_location_through_moto(org, s3, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    s3.put_object(Bucket="vigil-lists", Key="threats/list.txt", Body=b"192.0.2.0/24\n2001:db8::/32\n")
    with django_capture_on_commit_callbacks(execute=True):
        s = services.intel_set_create(actor=admin_user, account=admin_account, region="us-east-1", kind=THREAT,
                                      name="FromS3", fmt="TXT", location="s3://vigil-lists/threats/list.txt")
    s.refresh_from_db()
    assert s.status == "ACTIVE", s.error_details
    m = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert set(m.lookup_ips(["192.0.2.5", "2001:db8::5", "10.0.0.1"])) == {"192.0.2.5", "2001:db8::5"}
    # The object changes; GuardDuty semantics: it takes effect on re-activation.
    s3.put_object(Bucket="vigil-lists", Key="threats/list.txt", Body=b"192.0.3.1\n")
    with django_capture_on_commit_callbacks(execute=True):
        services.intel_set_update(actor=admin_user, set_id=s.set_id, activate=True)
    m = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert set(m.lookup_ips(["192.0.2.5", "192.0.3.1"])) == {"192.0.3.1"}
    # A missing object puts the list in ERROR and keeps the previous version.
    with django_capture_on_commit_callbacks(execute=True):
        services.intel_set_update(actor=admin_user, set_id=s.set_id, location="s3://vigil-lists/missing.txt",
                                  activate=True)
    s.refresh_from_db()
    assert s.status == "ERROR" and s.error_details.startswith("Cannot read s3://vigil-lists/missing.txt: NoSuchKey")
    assert "192.0.3.1" in services.matcher_for(account_id=admin_account.id, region="us-east-1").lookup_ips(["192.0.3.1"])


def test_s3_read_through_assumed_role(org, s3, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    admin_account.role_arn = "arn:aws:iam::123456789012:role/VigilReader"
    admin_account.save()
    s3.put_object(Bucket="vigil-lists", Key="ok.txt", Body=b"192.0.2.1\n")
    with django_capture_on_commit_callbacks(execute=True):
        s = services.intel_set_create(actor=admin_user, account=admin_account, region="us-east-1", kind=TRUSTED,
                                      name="Ok", fmt="TXT", location="s3://vigil-lists/ok.txt")
    s.refresh_from_db()
    assert s.status == "ACTIVE", s.error_details


def test_activation_of_250k_entries(org, django_capture_on_commit_callbacks, capsys):
    admin_account, admin_user, *_ = org
    lines = [f"{10 + i // 65536 % 200}.{i // 256 % 256}.{i % 256}.{(i * 7) % 256}" for i in range(200_000)]
    lines += [f"{20 + i % 200}.{i % 256}.{i // 256 % 256}.0/24" for i in range(25_000)]
    lines += [f"host{i}.bad{i % 977}.example" for i in range(25_000)]
    content = ("\n".join(lines) + "\n").encode()
    started = time.perf_counter()
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account, name="Big", content=content)
    activation = time.perf_counter() - started
    s.refresh_from_db()
    assert s.status == "ACTIVE" and s.active_version.entries == 250_000
    started = time.perf_counter()
    m = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    load = time.perf_counter() - started
    assert lines[12345] in m.lookup_ips([lines[12345]])
    assert "x.host7.bad7.example" in m.lookup_domains(["x.host7.bad7.example"])
    with capsys.disabled():
        print(f"\n250,000-entry list: activation {activation:.2f} s (parse+compile {s.active_version.parse_seconds:.2f} s), "
              f"matcher load {load:.2f} s, {len(content) / 1e6:.1f} MB")


def test_matcher_cache_reuses_and_shares(org, factory, django_capture_on_commit_callbacks):
    admin_account, admin_user, member_account, _ = org
    loner = factory.account(admin=factory.user())
    # No lists of their own: every account and region shares the built-in-only matcher.
    plain = services.matcher_for(account_id=loner.id, region="us-east-1")
    assert services.matcher_for(account_id=admin_account.id, region="eu-west-1") is plain
    with django_capture_on_commit_callbacks(execute=True):
        s = create(admin_user, admin_account, content=b"198.51.100.1\n")
    first = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert first is not plain and first.version != plain.version
    # Member and administrator use the same lists, hence the same matcher; unchanged -> same object.
    assert services.matcher_for(account_id=member_account.id, region="us-east-1") is first
    with django_capture_on_commit_callbacks(execute=True):
        services.intel_set_update(actor=admin_user, set_id=s.set_id, content=b"198.51.100.2\n", upload_name="b.txt",
                                  activate=True)
    second = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert second.version != first.version and set(second.lookup_ips(["198.51.100.1", "198.51.100.2"])) == {"198.51.100.2"}


def test_trusted_domains_suppress_threat_domains(org, django_capture_on_commit_callbacks):
    admin_account, admin_user, *_ = org
    with django_capture_on_commit_callbacks(execute=True):
        create(admin_user, admin_account, content=b"example.com\n")
        create(admin_user, admin_account, name="Ours", kind=TRUSTED, content=b"cdn.example.com\n")
    m = services.matcher_for(account_id=admin_account.id, region="us-east-1")
    assert set(m.lookup_domains(["a.example.com", "x.cdn.example.com"])) == {"a.example.com"}
    assert m.trusted_domains(["x.cdn.example.com", "a.example.com"]) == {"x.cdn.example.com"}


def test_a_lost_activation_does_not_block_forever(org):
    admin_account, admin_user, *_ = org
    s = create(admin_user, admin_account)  # the on-commit task never runs: ACTIVATING
    with pytest.raises(ConflictError):
        services.intel_set_delete(actor=admin_user, set_id=s.set_id)
    from datetime import timedelta

    from django.utils import timezone

    IntelSet.objects.filter(id=s.id).update(updated_at=timezone.now() - timedelta(minutes=16))
    services.intel_set_delete(actor=admin_user, set_id=s.set_id)
    assert IntelSet.objects.get(id=s.id).status == "DELETED"
