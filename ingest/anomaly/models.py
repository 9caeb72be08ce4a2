"""Learned baselines: one row per account, principal or instance, its state a small JSON document."""

from __future__ import annotations

from django.db import models

from accounts.models import Account
from console.fields import RowJSONField


class Baseline(models.Model):
    class Kind(models.TextChoices):
        ACCOUNT = "account", "Account"
        PRINCIPAL = "principal", "Principal"
        INSTANCE = "instance", "Instance"
        S3 = "s3", "S3 data access"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="anomaly_baselines")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # Principal: IAM user/root ARN, role ARN, or role ARN#instance-id; instance: instance or ENI id.
    key = models.CharField(max_length=1024)
    principal_type = models.CharField(max_length=32, blank=True)
    label = models.CharField(max_length=256, blank=True, help_text="User name, role or instance, for display.")
    state = RowJSONField(default=dict, help_text="ingest.anomaly.state.Profile.to_json()")
    first_seen = models.DateTimeField(null=True, blank=True)
    last_seen = models.DateTimeField(null=True, blank=True)
    active_hours = models.FloatField(default=0.0, help_text="Decayed active hours learned (denormalised).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "kind", "key"], name="uniq_baseline_account_kind_key")]
        indexes = [models.Index(fields=["account", "kind", "-last_seen"], name="baseline_account_kind_seen")]
        ordering = ["account", "kind", "key"]

    def __str__(self) -> str:
        return f"{self.kind} baseline {self.key} ({self.account.aws_account_id})"
