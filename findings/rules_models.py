"""Saved filters and suppression rules, feedback-driven rule proposals, notification destinations
and their delivery log. Imported by findings.models so Django registers them with the app."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from accounts.models import Account
from console.fields import RowJSONField

filter_name_validator = RegexValidator(
    r"^[A-Za-z0-9._-]{3,64}$", "A filter name is 3 to 64 characters: letters, digits, '.', '_' and '-'."
)


class SavedFilter(models.Model):
    """GuardDuty's Filter: a saved view (NOOP) or a suppression rule (ARCHIVE) of the administrator
    account, applying to its own and its members' findings."""

    class Action(models.TextChoices):
        NOOP = "NOOP", "Saved view (NOOP)"
        ARCHIVE = "ARCHIVE", "Suppression rule (ARCHIVE)"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="finding_filters")
    name = models.CharField(max_length=64, validators=[filter_name_validator])
    description = models.CharField(max_length=512, blank=True)
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.NOOP)
    rank = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1), MaxValueValidator(100)])
    criteria = models.JSONField(default=dict)
    tags = models.JSONField(default=dict, blank=True)  # GuardDuty TagResource on filters
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    # How many findings this rule has archived at creation (suppressed): shown next to the rule.
    suppressed_count = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rank", "name"]
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="uniq_filter_account_name")]
        indexes = [models.Index(fields=["account", "action", "rank"], name="filter_acct_action_rank")]

    def __str__(self) -> str:
        return f"{self.name} ({self.action}) of {self.account.aws_account_id}"


class SuppressionProposal(models.Model):
    """A suppression rule Vigil proposes after analysts marked several similar findings not useful."""

    class Status(models.TextChoices):
        PROPOSED = "PROPOSED"
        ACCEPTED = "ACCEPTED"
        DISMISSED = "DISMISSED"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="suppression_proposals")
    finding_type = models.CharField(max_length=100)
    criteria = models.JSONField(default=dict)
    # Canonical JSON of the criteria: a dismissed proposal is never proposed again.
    criteria_key = models.CharField(max_length=64)
    not_useful_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    saved_filter = models.ForeignKey(SavedFilter, null=True, blank=True, on_delete=models.SET_NULL)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "criteria_key"], name="uniq_proposal_account_criteria"),
        ]

    def __str__(self) -> str:
        return f"proposal {self.finding_type} for {self.account.aws_account_id}: {self.status}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_destination_id() -> str:
    return secrets.token_hex(16)


class Destination(models.Model):
    """Where an account's findings go: EventBridge-format events (webhook, Slack, EventBridge) or the
    S3 export of active findings (gzip'd JSON Lines).

    One model for the console's destinations and GuardDuty's publishing destinations: a destination
    bound to a detector is GuardDuty's (CreatePublishingDestination; one per detector, that detector's
    Region only, addressed by `destination_id`); gdapi.publishing adapts it to GuardDuty's shapes.
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "HTTPS webhook (HMAC-signed)"
        SLACK = "slack", "Slack / Teams incoming webhook"
        EVENTBRIDGE = "eventbridge", "Amazon EventBridge"
        S3 = "s3", "S3 export (gzip JSON lines)"

    class Status(models.TextChoices):
        OK = "OK"
        FAILING = "FAILING"
        QUEUE_FULL = "QUEUE_FULL"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="finding_destinations")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    url = models.URLField(max_length=2048, blank=True)
    secret = models.CharField(max_length=64, default=new_secret)
    # eventbridge: region, event_bus_name, endpoint_url; s3: bucket, prefix, region, endpoint_url,
    # kms_key_arn, expected_bucket_owner, partition.
    config = models.JSONField(default=dict, blank=True)
    # GuardDuty's DestinationId (every destination has one, so the API can name any of them).
    destination_id = models.CharField(max_length=32, unique=True, default=new_destination_id)
    # Set for GuardDuty's publishing destinations: only this detector's Region is exported.
    detector = models.ForeignKey("accounts.Detector", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="finding_destinations")
    tags = models.JSONField(default=dict, blank=True)  # GuardDuty TagResource on publishing destinations
    min_severity = models.FloatField(default=1.0, validators=[MinValueValidator(1.0), MaxValueValidator(10.0)])
    criteria = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OK)
    last_error = models.TextField(blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    # Events refused because the queue was full (visible on the page; never silently lost).
    refused_count = models.BigIntegerField(default=0)
    # S3 export: active findings updated up to this instant are exported (the findings table is the
    # queue, so an export that is down loses nothing and grows nothing).
    exported_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="uniq_destination_account_name"),
            # GuardDuty's limit: one publishing destination per detector.
            models.UniqueConstraint(fields=["detector"], condition=Q(detector__isnull=False),
                                    name="uniq_destination_detector"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}) of {self.account.aws_account_id}"

    @property
    def export_status(self) -> str:
        """GuardDuty's publishing-destination status, derived from the delivery state."""
        if not self.enabled:
            return "STOPPED"
        if self.status == self.Status.FAILING:
            return "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        return "PUBLISHING" if self.last_success_at else "PENDING_VERIFICATION"


class Delivery(models.Model):
    """One event for one destination: the queue while pending, the delivery log afterwards."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        DELIVERED = "DELIVERED"
        FAILED = "FAILED"  # only test events, which are tried once

    class Kind(models.TextChoices):
        NEW = "NEW"
        UPDATED = "UPDATED"
        TEST = "TEST"
        EXPORT = "EXPORT"  # one S3 object of the export (event holds its key and finding count)

    destination = models.ForeignKey(Destination, on_delete=models.CASCADE, related_name="deliveries")
    finding = models.ForeignKey("findings.Finding", null=True, blank=True, on_delete=models.SET_NULL)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    region = models.CharField(max_length=32, blank=True)
    event = RowJSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["destination", "status"], name="delivery_dest_status"),
            models.Index(fields=["destination", "-created_at"], name="delivery_dest_created"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(attempts__gte=0), name="delivery_attempts_nonneg"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.destination_id}: {self.status} after {self.attempts}"
