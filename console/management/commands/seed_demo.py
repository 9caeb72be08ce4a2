"""Create the demo organisation: an administrator account with two members, detectors and logins.

Idempotent: running it again keeps what exists. The demo password is generated once into var/
and printed each time.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account, AccountMembership, Detector, Member, RelationshipStatus, Role

ADMIN_ACCOUNT = ("111111111111", "Acme Security (administrator)", "security@acme.example")
MEMBER_ACCOUNTS = [
    ("222222222222", "Acme Production", "aws-prod@acme.example", "prod-admin"),
    ("333333333333", "Acme Staging", "aws-staging@acme.example", "staging-admin"),
]
DEMO_REGIONS = ["us-east-1", "eu-west-1"]


def demo_password() -> str:
    path = settings.VAR_DIR / "demo-password"
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password)
    path.chmod(0o600)
    return password


def seed_findings(stdout) -> None:
    """Demo findings produced by running demo logs through the real ingest pipeline."""
    from ingest.demo import seed_demo_findings

    seed_demo_findings(stdout)


class Command(BaseCommand):
    help = "Seed a demo administrator account with two members, detectors and demo logins."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        password = demo_password()
        users = get_user_model().objects

        def user(username: str, **extra) -> object:
            obj, created = users.get_or_create(username=username, defaults=extra)
            if created:
                obj.set_password(password)
                obj.save()
            return obj

        admin_id, admin_name, admin_email = ADMIN_ACCOUNT
        admin_account, _ = Account.objects.get_or_create(
            aws_account_id=admin_id,
            defaults={"name": admin_name, "email": admin_email,
                      "role_arn": f"arn:aws:iam::{admin_id}:role/VigilReader", "external_id": "vigil-demo"},
        )
        demo = user("demo", is_staff=True, is_superuser=True, email="demo@acme.example")
        analyst = user("analyst", email="analyst@acme.example")
        viewer = user("viewer", email="viewer@acme.example")
        for person, role in ((demo, Role.ADMIN), (analyst, Role.ANALYST), (viewer, Role.VIEWER)):
            AccountMembership.objects.get_or_create(user=person, account=admin_account, defaults={"role": role})
        for region in DEMO_REGIONS:
            Detector.objects.get_or_create(account=admin_account, region=region,
                                           defaults={"finding_publishing_frequency": "FIFTEEN_MINUTES"})

        for account_id, name, email, username in MEMBER_ACCOUNTS:
            account, _ = Account.objects.get_or_create(
                aws_account_id=account_id,
                defaults={"name": name, "email": email,
                          "role_arn": f"arn:aws:iam::{account_id}:role/VigilReader", "external_id": "vigil-demo"},
            )
            AccountMembership.objects.get_or_create(user=user(username), account=account, defaults={"role": Role.ADMIN})
            Detector.objects.get_or_create(account=account, region="us-east-1",
                                           defaults={"finding_publishing_frequency": "FIFTEEN_MINUTES"})
            Member.objects.get_or_create(
                administrator=admin_account, member=account,
                defaults={"email": email, "relationship_status": RelationshipStatus.ENABLED},
            )

        seed_findings(self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo organisation ready."))
        self.stdout.write(f"  administrator {admin_id} ({admin_name}) with members "
                          + ", ".join(a for a, *_ in MEMBER_ACCOUNTS))
        self.stdout.write(f"  sign in as  demo / {password}   (administrator admin)")
        self.stdout.write("  also        analyst, viewer, prod-admin, staging-admin  (same password)")
