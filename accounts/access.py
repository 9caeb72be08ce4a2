"""The single place that decides which accounts a person may see and what they may do there.

Visibility follows GuardDuty: a person sees the accounts they belong to, and, where such an
account is an administrator, the members associated with it (Enabled or Disabled). A foreign or
unknown id is answered as "not found", never as "forbidden", so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from accounts.models import ASSOCIATED_STATUSES, Account, AccountMembership, Member, Role
from console.errors import NotFoundError, PermissionDeniedError

UserLike = AbstractBaseUser | AnonymousUser

TRIAGE_ROLES = frozenset({Role.ADMIN, Role.ANALYST})
ADMIN_ROLES = frozenset({Role.ADMIN})


def direct_account_ids(user: UserLike) -> set[int]:
    """Accounts the person belongs to directly."""
    if not getattr(user, "is_authenticated", False):
        return set()
    return set(AccountMembership.objects.filter(user=user).values_list("account_id", flat=True))


def accounts_visible_to(*, user: UserLike) -> QuerySet[Account]:
    if not getattr(user, "is_authenticated", False):
        return Account.objects.none()
    own = AccountMembership.objects.filter(user=user).values("account_id")
    members = Member.objects.filter(administrator_id__in=own, relationship_status__in=ASSOCIATED_STATUSES).values(
        "member_id"
    )
    return Account.objects.filter(Q(id__in=own) | Q(id__in=members)).distinct()


def administrator_of(account: Account) -> Account | None:
    record = (
        Member.objects.filter(member=account, relationship_status__in=ASSOCIATED_STATUSES)
        .select_related("administrator")
        .first()
    )
    return record.administrator if record else None


def role_in(user: UserLike, account: Account) -> str | None:
    """The person's own role in this account (not through an administrator)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return (
        AccountMembership.objects.filter(user=user, account=account).values_list("role", flat=True).first()
    )


def access_account_by_id(user: UserLike, account_id: int) -> Account:
    account = accounts_visible_to(user=user).filter(id=account_id).first()
    if account is None:
        raise NotFoundError("No such account.")
    return account


def access_account_by_aws_id(user: UserLike, aws_account_id: str) -> Account:
    account = accounts_visible_to(user=user).filter(aws_account_id=aws_account_id).first()
    if account is None:
        raise NotFoundError("No such account.")
    return account


def require_role(user: UserLike, account: Account, roles: Iterable[str], *, what: str) -> None:
    """Raise unless the person holds one of `roles` in `account` itself."""
    role = role_in(user, account)
    if role is None:
        raise NotFoundError("No such account.")
    if role not in set(roles):
        raise PermissionDeniedError(f"Your role ({role}) in account {account.aws_account_id} cannot {what}.")


def managing_account(account: Account) -> Account:
    """The account whose people manage lists, suppression rules, archiving and publishing for
    `account`: its administrator while associated, otherwise the account itself."""
    return administrator_of(account) or account


def require_manager_role(user: UserLike, account: Account, roles: Iterable[str], *, what: str) -> Account:
    """Raise unless the person holds one of `roles` in the account that manages `account`.

    A member account's own people are refused: GuardDuty lets only the administrator archive,
    suppress, manage lists and set the publishing frequency for its members.
    """
    if account.id not in set(accounts_visible_to(user=user).values_list("id", flat=True)):
        raise NotFoundError("No such account.")
    manager = managing_account(account)
    role = role_in(user, manager)
    if role is None or role not in set(roles):
        if manager.id != account.id:
            raise PermissionDeniedError(
                f"Account {account.aws_account_id} is a member of {manager.aws_account_id}: "
                f"only the administrator account can {what}."
            )
        raise PermissionDeniedError(f"Your role in account {account.aws_account_id} cannot {what}.")
    return manager
