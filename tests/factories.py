"""Small factories for the suite: real rows through the real models and services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model

from accounts.models import Account, AccountMembership, Detector, Member, RelationshipStatus, Role

PASSWORD = "correct-horse-battery-staple"


@dataclass
class AccountFactory:
    _ids: itertools.count = field(default_factory=lambda: itertools.count(100000000001))

    def user(self, username: str | None = None):
        username = username or f"user{next(self._ids)}"
        return get_user_model().objects.create_user(username=username, password=PASSWORD)

    def account(self, *, aws_account_id: str | None = None, name: str = "", email: str = "", admin=None,
                role: str = Role.ADMIN, region: str | None = "us-east-1") -> Account:
        aws_account_id = aws_account_id or str(next(self._ids)).zfill(12)
        account = Account.objects.create(aws_account_id=aws_account_id, name=name or f"Account {aws_account_id}",
                                         email=email or f"aws-{aws_account_id}@example.com")
        if admin is not None:
            AccountMembership.objects.create(user=admin, account=account, role=role)
        if region:
            Detector.objects.create(account=account, region=region)
        return account

    def grant(self, user, account: Account, role: str) -> AccountMembership:
        return AccountMembership.objects.create(user=user, account=account, role=role)

    def associate(self, administrator: Account, member: Account,
                  status: str = RelationshipStatus.ENABLED) -> Member:
        return Member.objects.create(administrator=administrator, member=member, email=member.email,
                                     relationship_status=status)

    def organisation(self):
        """An administrator account with one enabled member, each with an admin user."""
        admin_user, member_user = self.user(), self.user()
        admin_account = self.account(admin=admin_user)
        member_account = self.account(admin=member_user)
        self.associate(admin_account, member_account)
        return admin_account, admin_user, member_account, member_user
