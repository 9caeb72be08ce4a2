"""Findings in GuardDuty's format, aggregated by fingerprint, and the outbox of what to publish.

`resource` and `service` hold GuardDuty's camelCase sub-documents (Resource, Service.Action,
AdditionalInfo, Evidence, ResourceRole) exactly as GetFindings returns them; the scalar fields
(count, first/last seen, archived, feedback, severity) live in columns because they are filtered,
sorted and aggregated. `findings.serialize` joins both back into GuardDuty's JSON.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from accounts.models import Account, Detector


def new_finding_id() -> str:
    return secrets.token_hex(16)


class Feedback(models.TextChoices):
    NONE = "", "None"
    USEFUL = "USEFUL", "Useful"
    NOT_USEFUL = "NOT_USEFUL", "Not useful"


class Finding(models.Model):
    finding_id = models.CharField(max_length=32, unique=True, default=new_finding_id)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="findings")
    detector = models.ForeignKey(Detector, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings")
    partition = models.CharField(max_length=16, default="aws")
    region = models.CharField(max_length=32)
    type = models.CharField(max_length=100)
    severity = models.FloatField()
    # floor(severity), 1..10: what GuardDuty's severity filters ("Equals": ["7", "8"]) compare against.
    severity_level = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    resource_type = models.CharField(max_length=32)
    resource = models.JSONField(default=dict, blank=True)
    service = models.JSONField(default=dict, blank=True)
    # A bounded sample of the raw records (CloudTrail events, flow rows, DNS queries) behind the finding.
    evidence_events = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=64)
    count = models.BigIntegerField(default=1)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    archived = models.BooleanField(default=False)
    # Archived at creation by a suppression rule (not by an analyst): its later occurrences are never
    # published. A finding archived by hand still has its occurrences sent at the publishing frequency.
    suppressed = models.BooleanField(default=False, db_default=False)
    feedback = models.CharField(max_length=10, choices=Feedback.choices, default=Feedback.NONE, blank=True)
    is_sample = models.BooleanField(default=False)
    # Denormalised filter columns (GuardDuty's FindingCriteria names in comments).
    action_type = models.CharField(max_length=32, blank=True)  # service.action.actionType
    resource_role = models.CharField(max_length=8, blank=True)  # service.resourceRole
    resource_id = models.CharField(max_length=256, blank=True)  # instance id, access key id or bucket name
    instance_id = models.CharField(max_length=32, blank=True)  # resource.instanceDetails.instanceId
    access_key_id = models.CharField(max_length=128, blank=True)  # resource.accessKeyDetails.accessKeyId
    principal_id = models.CharField(max_length=256, blank=True)  # resource.accessKeyDetails.principalId
    user_name = models.CharField(max_length=256, blank=True)  # resource.accessKeyDetails.userName
    bucket_name = models.CharField(max_length=63, blank=True)  # resource.s3BucketDetails.name
    remote_ip = models.CharField(max_length=45, blank=True)  # ...remoteIpDetails.ipAddressV4
    domain = models.CharField(max_length=255, blank=True)  # service.action.dnsRequestAction.domain
    api = models.CharField(max_length=128, blank=True)  # service.action.awsApiCallAction.api
    threat_list_name = models.CharField(max_length=300, blank=True)  # service.additionalInfo.threatListName

    class Meta:
        ordering = ["-severity", "-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "fingerprint"], name="uniq_finding_account_fingerprint"),
            models.CheckConstraint(condition=Q(severity__gte=1.0) & Q(severity__lte=10.0), name="finding_severity_range"),
        ]
        indexes = [
            # The console's default view and its common filters, newest/most severe first.
            models.Index(fields=["account", "-severity", "-last_seen"], name="finding_acct_sev_seen"),
            models.Index(fields=["account", "archived", "-last_seen"], name="finding_acct_arch_seen"),
            models.Index(fields=["account", "type", "-last_seen"], name="finding_acct_type_seen"),
            models.Index(fields=["account", "region", "-last_seen"], name="finding_acct_region_seen"),
            models.Index(fields=["account", "-updated_at"], name="finding_acct_updated"),
            models.Index(fields=["-last_seen", "-id"], name="finding_seen_id"),
            models.Index(fields=["severity_level", "-last_seen"], name="finding_level_seen"),
            # Filter column, archived (the page's Current/Archived view), then the default order: "this
            # value, current, newest first" is one index range read even when every match is old or
            # archived (a single-column index made the planner walk finding_seen_id past newer rows).
            models.Index(fields=["type", "archived", "-last_seen", "-id"], name="finding_type_seen"),
            models.Index(fields=["resource_id", "archived", "-last_seen", "-id"], name="finding_resource_seen"),
            models.Index(fields=["instance_id", "archived", "-last_seen", "-id"], name="finding_instance_seen"),
            models.Index(fields=["access_key_id", "archived", "-last_seen", "-id"], name="finding_key_seen"),
            models.Index(fields=["bucket_name", "archived", "-last_seen", "-id"], name="finding_bucket_seen"),
            models.Index(fields=["remote_ip", "archived", "-last_seen", "-id"], name="finding_ip_seen"),
            models.Index(fields=["threat_list_name", "archived", "-last_seen", "-id"], name="finding_threat_seen"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.finding_id} ({self.account_id}, {self.region}) x{self.count}"

    @property
    def arn(self) -> str:
        detector = self.detector  # may be an unsaved Detector (offline analysis)
        detector_id = detector.detector_id if detector is not None else "-"
        return (
            f"arn:{self.partition}:guardduty:{self.region}:{self.account.aws_account_id}:detector/{detector_id}"
            f"/finding/{self.finding_id}"
        )


class FindingPublication(models.Model):
    """Outbox: a finding that is new, or has new occurrences, and is not yet published.

    At most one pending row per finding and kind, so a finding updated a thousand times between two
    publishing runs is published once (GuardDuty merges updates per FindingPublishingFrequency).
    """

    class Kind(models.TextChoices):
        NEW = "NEW"
        UPDATED = "UPDATED"

    finding = models.ForeignKey(Finding, on_delete=models.CASCADE, related_name="publications")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["finding", "kind"], condition=Q(published_at__isnull=True), name="uniq_pending_publication"
            ),
        ]
        indexes = [models.Index(fields=["published_at", "created_at"], name="publication_pending")]

    def __str__(self) -> str:
        return f"{self.kind} {self.finding_id} published={self.published_at}"


# Rules, proposals and notification models live in their own module; importing them here registers them.
from findings.rules_models import (  # noqa: E402, F401
    Delivery,
    Destination,
    SavedFilter,
    SuppressionProposal,
)
