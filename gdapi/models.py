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
