"""`manage.py create_access_key USERNAME [--account AWS_ACCOUNT_ID]`: a new key for scripts.

Prints the access key id and secret once, in the shape `aws configure` and boto3 expect.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Account, AccountMembership
from console.errors import ServiceError
from gdapi.services import access_key_create


class Command(BaseCommand):
    help = "Create a GuardDuty API access key (SigV4) for a user in one of their accounts; prints the secret once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--account", help="12-digit AWS account id (needed when the user belongs to several).")
        parser.add_argument("--description", default="created with manage.py create_access_key")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        accounts = Account.objects.filter(id__in=AccountMembership.objects.filter(user=user).values("account_id"))
        if options["account"]:
            accounts = accounts.filter(aws_account_id=options["account"])
        choices = list(accounts.order_by("aws_account_id"))
        if not choices:
            raise CommandError(f"{user.get_username()} does not belong to "
                               f"{'account ' + options['account'] if options['account'] else 'any account'}.")
        if len(choices) > 1:
            listed = ", ".join(a.aws_account_id for a in choices)
            raise CommandError(f"{user.get_username()} belongs to several accounts ({listed}): give --account.")
        try:
            key, secret = access_key_create(actor=user, account=choices[0], description=options["description"])
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"aws_access_key_id = {key.access_key_id}")
        self.stdout.write(f"aws_secret_access_key = {secret}")
        self.stderr.write(f"Key for {user.get_username()} in account {choices[0].aws_account_id}. "
                          "The secret is not shown again.")
