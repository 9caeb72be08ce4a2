"""Where logs come from, how far Vigil has read them, what it learned, and what it metered."""

from __future__ import annotations

from django.db import models

from accounts.models import Account, Detector
from console.fields import RowJSONField


class LogKind(models.TextChoices):
    CLOUDTRAIL = "cloudtrail", "CloudTrail"
    FLOW = "flow", "VPC Flow Logs"
    DNS = "dns", "Route 53 Resolver query logs"


class LogSource(models.Model):
    """One detector's log source: a bucket (and optional key prefix) in AWS's delivery layout,
    read by listing after a checkpoint, or through an SQS queue of S3 event notifications."""

    detector = models.ForeignKey(Detector, on_delete=models.CASCADE, related_name="log_sources")
    kind = models.CharField(max_length=16, choices=LogKind.choices)
    bucket = models.CharField(max_length=63)
    key_prefix = models.CharField(max_length=512, blank=True, help_text="Prefix before AWSLogs/, if any.")
    sqs_queue_url = models.CharField(max_length=1024, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Status, for the sources page.
    last_object_key = models.CharField(max_length=1024, blank=True)
    last_object_modified = models.DateTimeField(null=True, blank=True)
    newest_object_modified = models.DateTimeField(null=True, blank=True)
    last_listed_at = models.DateTimeField(null=True, blank=True)
    objects_processed = models.BigIntegerField(default=0)
    records_processed = models.BigIntegerField(default=0)
    malformed_records = models.BigIntegerField(default=0)
    malformed_samples = models.JSONField(default=list, blank=True)
    objects_failed = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["detector_id", "kind", "bucket"]
        constraints = [
            models.UniqueConstraint(fields=["detector", "kind", "bucket", "key_prefix"], name="uniq_log_source"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} s3://{self.bucket}/{self.key_prefix} ({self.detector})"

    @property
    def lag_seconds(self) -> float | None:
        """How far processing trails the newest object seen in the bucket."""
        if self.newest_object_modified is None:
            return None
        if self.last_object_modified is None:
            return None
        return max(0.0, (self.newest_object_modified - self.last_object_modified).total_seconds())


class SourceCheckpoint(models.Model):
    """The last key listed under one prefix (S3 lists in key order, and AWS's keys sort by date)."""

    source = models.ForeignKey(LogSource, on_delete=models.CASCADE, related_name="checkpoints")
    prefix = models.CharField(max_length=1024)
    start_after = models.CharField(max_length=1024, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "prefix"], name="uniq_checkpoint_prefix")]

    def __str__(self) -> str:
        return f"{self.prefix} after {self.start_after!r}"


class ProcessedObject(models.Model):
    """Ledger: one row per object version. Its effects (findings, usage, state) commit in the same
    transaction as status=done, so re-delivery or a retry after a killed worker never counts twice."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="processed_objects")
    source = models.ForeignKey(LogSource, null=True, blank=True, on_delete=models.SET_NULL, related_name="processed_objects")
    bucket = models.CharField(max_length=63)
    key = models.CharField(max_length=1024)
    etag = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=LogKind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    records = models.BigIntegerField(default=0)
    malformed = models.BigIntegerField(default=0)
    bytes_uncompressed = models.BigIntegerField(default=0)
    findings = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Last handed to the broker (discovery or the sweeper) and last taken up by a worker: a pending
    # row with neither for VIGIL_INGEST_STALE_SECONDS lost its task (worker or broker gone) and is
    # dispatched again by the sweeper.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "bucket", "key", "etag"], name="uniq_processed_object"),
        ]
        indexes = [models.Index(fields=["source", "status", "-processed_at"], name="processed_source_status"),
                   models.Index(fields=["status", "dispatched_at"], name="processed_status_dispatched")]

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key} {self.status}"


class InventoryInstance(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inventory_instances")
    region = models.CharField(max_length=32)
    instance_id = models.CharField(max_length=32)
    details = RowJSONField(default=dict, blank=True)  # GuardDuty's instanceDetails shape
    learned_from = models.CharField(max_length=16, default="logs")  # "logs" | "api"
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "region", "instance_id"], name="uniq_inventory_instance"),
        ]

    def __str__(self) -> str:
        return self.instance_id


class InventoryLink(models.Model):
    """An ENI id or IP address known to belong to an instance."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inventory_links")
    region = models.CharField(max_length=32)
    value = models.CharField(max_length=64)
    instance_id = models.CharField(max_length=32)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "region", "value"], name="uniq_inventory_link")]

    def __str__(self) -> str:
        return f"{self.value} -> {self.instance_id}"


class InventoryPrincipal(models.Model):
    """An IAM user or role of a member account (IAM is global: no region), from ListUsers/ListRoles."""

    class Kind(models.TextChoices):
        USER = "IAMUser", "IAM user"
        ROLE = "Role", "IAM role"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inventory_principals")
    arn = models.CharField(max_length=512)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=128)
    principal_id = models.CharField(max_length=128, blank=True, default="")  # AIDA…/AROA…, as CloudTrail shows it
    path = models.CharField(max_length=512, blank=True, default="/")
    created = models.DateTimeField(null=True, blank=True)
    details = RowJSONField(default=dict, blank=True)  # tags, trust policy principals, last used
    learned_from = models.CharField(max_length=16, default="api")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "arn"], name="uniq_inventory_principal")]
        indexes = [models.Index(fields=["account", "principal_id"], name="inv_principal_id_idx")]

    def __str__(self) -> str:
        return self.arn


class InventoryBucket(models.Model):
    """An S3 bucket of a member account, from ListBuckets."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="inventory_buckets")
    name = models.CharField(max_length=63)
    region = models.CharField(max_length=32, blank=True, default="")
    created = models.DateTimeField(null=True, blank=True)
    learned_from = models.CharField(max_length=16, default="api")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="uniq_inventory_bucket")]

    def __str__(self) -> str:
        return self.name


class RuleState(models.Model):
    """State a stateful rule keeps across objects and workers (windows, histories)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="rule_states")
    region = models.CharField(max_length=32)
    rule = models.CharField(max_length=100)
    key = models.CharField(max_length=256)
    value = RowJSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "region", "rule", "key"], name="uniq_rule_state")]
        # Expiry deletes by (rule, age): ingest.state.rule_state_expire.
        indexes = [models.Index(fields=["rule", "updated_at"], name="rule_state_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.rule}:{self.key}"


class UsageRecord(models.Model):
    """What GuardDuty bills: events (CloudTrail, S3 data events) and uncompressed bytes (flow, DNS)
    analysed per account, region, data source and day; `resource` is the bucket for S3 data events."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage_records")
    region = models.CharField(max_length=32)
    data_source = models.CharField(max_length=16)  # CLOUD_TRAIL | S3_LOGS | FLOW_LOGS | DNS_LOGS
    day = models.DateField()
    resource = models.CharField(max_length=255, blank=True, default="")
    events = models.BigIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["-day", "data_source"]
        constraints = [
            models.UniqueConstraint(fields=["account", "region", "data_source", "day", "resource"], name="uniq_usage_day"),
        ]
        indexes = [models.Index(fields=["account", "day"], name="usage_account_day")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.region} {self.data_source} {self.day}: {self.events} events, {self.bytes} B"


# Behavioural baselines live beside the anomaly model that learns them.
from ingest.anomaly.models import Baseline  # noqa: E402,F401
