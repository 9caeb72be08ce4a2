"""Access keys for the GuardDuty-compatible API (AWS Signature Version 4).

The server must recompute each request's HMAC, so the secret cannot be stored as a one-way hash
like the REST API's bearer tokens: it is stored encrypted with a key derived from SECRET_KEY
(gdapi.crypto) and shown to its owner once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AccessKey(models.Model):
    """An access key acts as one person in one account, like an IAM user's key in one AWS account."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_keys")
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="access_keys")
    access_key_id = models.CharField(max_length=20, unique=True)
    secret_encrypted = models.TextField()
    description = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.access_key_id} ({self.user} in {self.account.aws_account_id})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


def new_destination_id() -> str:
    import secrets

    return secrets.token_hex(16)


class PublishingDestination(models.Model):
    """GuardDuty's publishing destination: active findings of a detector (and of its associated
    members, for an administrator) exported to S3 as gzip'd JSON Lines, encrypted with a KMS key."""

    class Status(models.TextChoices):
        PENDING_VERIFICATION = "PENDING_VERIFICATION"
        PUBLISHING = "PUBLISHING"
        UNABLE_TO_PUBLISH = "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        STOPPED = "STOPPED"

    destination_id = models.CharField(max_length=32, unique=True, default=new_destination_id)
    detector = models.OneToOneField("accounts.Detector", on_delete=models.CASCADE, related_name="publishing_destination")
    destination_arn = models.CharField(max_length=1100)
    kms_key_arn = models.CharField(max_length=2048)
    expected_bucket_owner = models.CharField(max_length=12, blank=True)
    status = models.CharField(max_length=48, choices=Status.choices, default=Status.PENDING_VERIFICATION)
    failure_started_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Findings updated after this instant are not exported yet.
    exported_until = models.DateTimeField(null=True, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.destination_arn} ({self.status})"
