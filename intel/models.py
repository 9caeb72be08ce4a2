"""Trusted IP lists and threat lists (GuardDuty's IPSet and ThreatIntelSet), one table with a kind.

A list belongs to the account that manages it (an administrator, or a standalone account) in one
region. Its content lives in versions: activation parses and compiles a new version, then points
`active_version` at it in one UPDATE, so detection never sees half a list and a failed update
leaves the previous version in force.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account

MAX_THREAT_LISTS = 6  # per account per region, GuardDuty's quota
MAX_TRUSTED_LISTS = 1
STALE_AFTER = timedelta(minutes=15)  # activation takes seconds; this long means the task was lost


def new_set_id() -> str:
    return secrets.token_hex(16)


class IntelSet(models.Model):
    class Kind(models.TextChoices):
        THREAT = "THREAT", "Threat list"
        TRUSTED = "TRUSTED", "Trusted IP list"

    class Status(models.TextChoices):
        INACTIVE = "INACTIVE"
        ACTIVATING = "ACTIVATING"
        ACTIVE = "ACTIVE"
        DEACTIVATING = "DEACTIVATING"
        ERROR = "ERROR"
        DELETE_PENDING = "DELETE_PENDING"
        DELETED = "DELETED"

    class Format(models.TextChoices):
        TXT = "TXT"
        STIX = "STIX"
        OTX_CSV = "OTX_CSV"
        ALIEN_VAULT = "ALIEN_VAULT"
        PROOF_POINT = "PROOF_POINT"
        FIRE_EYE = "FIRE_EYE"

    set_id = models.CharField(max_length=32, unique=True, default=new_set_id)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="intel_sets")
    region = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Slots enforce the quota in the database: 1..6 for threat lists, 1 for the trusted list, unique
    # per account, region and kind; a deleted list gives its slot back (NULL).
    slot = models.PositiveSmallIntegerField(null=True, blank=True)
    name = models.CharField(max_length=300)
    format = models.CharField(max_length=12, choices=Format.choices)
    location = models.CharField(max_length=300, blank=True, help_text="s3://bucket/key, or empty for an uploaded file.")
    expected_bucket_owner = models.CharField(max_length=12, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INACTIVE)
    tags = models.JSONField(default=dict, blank=True)
    # The uploaded file waiting to be (re)activated; S3 lists are read at activation.
    upload = models.BinaryField(null=True, blank=True, editable=False)
    upload_name = models.CharField(max_length=255, blank=True)
    active_version = models.ForeignKey(
        "IntelSetVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    error_details = models.TextField(blank=True)
    last_attempt = models.JSONField(default=dict, blank=True, help_text="Counts and rejected lines of the last parse.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["region", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["account", "region", "kind", "slot"], name="uniq_intelset_slot"),
            models.CheckConstraint(
                condition=Q(slot__isnull=True)
                | Q(kind="THREAT", slot__gte=1, slot__lte=MAX_THREAT_LISTS)
                | Q(kind="TRUSTED", slot__gte=1, slot__lte=MAX_TRUSTED_LISTS),
                name="intelset_slot_in_quota",
            ),
        ]
        indexes = [models.Index(fields=["account", "region", "status"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} ({self.region}, {self.status})"

    @property
    def is_trusted(self) -> bool:
        return self.kind == self.Kind.TRUSTED

    @property
    def is_busy(self) -> bool:
        """GuardDuty refuses every action while a list is in a transitional status. A transition
        older than STALE_AFTER (a lost task) no longer blocks, so a list can never be stuck."""
        if self.status not in (self.Status.ACTIVATING, self.Status.DEACTIVATING, self.Status.DELETE_PENDING):
            return False
        return self.updated_at is None or timezone.now() - self.updated_at < STALE_AFTER


class IntelSetVersion(models.Model):
    """One parsed and compiled content of a list. Immutable once written."""

    intel_set = models.ForeignKey(IntelSet, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source_sha256 = models.CharField(max_length=64)
    source_bytes = models.PositiveIntegerField()
    compiled = models.BinaryField(editable=False)
    counts = models.JSONField(default=dict)  # ip, cidr, domain, ipv6
    entries = models.PositiveIntegerField(default=0)
    rejected = models.JSONField(default=list)  # first 100: {"line", "reason", "text"}
    rejected_total = models.PositiveIntegerField(default=0)
    parse_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["intel_set", "number"], name="uniq_intelset_version")]

    def __str__(self) -> str:
        return f"{self.intel_set.name} v{self.number}"
