"""Who sees which accounts."""

from accounts import access
from accounts.models import RelationshipStatus


def test_administrator_sees_enabled_and_disabled_members(factory):
    admin_account, admin_user, member_account, member_user = factory.organisation()
    assert set(access.accounts_visible_to(user=admin_user)) == {admin_account, member_account}
    assert set(access.accounts_visible_to(user=member_user)) == {member_account}


def test_administrator_does_not_see_invited_or_removed_members(factory):
    admin_user = factory.user()
    admin_account = factory.account(admin=admin_user)
    for status in (RelationshipStatus.INVITED, RelationshipStatus.REMOVED, RelationshipStatus.RESIGNED,
                   RelationshipStatus.CREATED):
        factory.associate(admin_account, factory.account(), status=status)
    assert set(access.accounts_visible_to(user=admin_user)) == {admin_account}


def test_unrelated_user_sees_nothing(factory):
    factory.organisation()
    stranger = factory.user()
    assert not access.accounts_visible_to(user=stranger).exists()


def test_anonymous_sees_nothing(factory):
    from django.contrib.auth.models import AnonymousUser

    factory.organisation()
    assert not access.accounts_visible_to(user=AnonymousUser()).exists()
