"""AWS accounts watched by Vigil, their detectors, the people who use them, and
GuardDuty's administrator/member relationships."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Q

aws_account_id_validator = RegexValidator(r"^\d{12}$", "An AWS account id is exactly 12 digits.")


class Account(models.Model):
    aws_account_id = models.CharField(max_length=12, unique=True, validators=[aws_account_id_validator])
    name = models.CharField(max_length=100)
    email = models.EmailField(max_length=64, blank=True)
    role_arn = models.CharField(max_length=2048, blank=True, help_text="IAM role Vigil assumes to read this account's logs.")
    external_id = models.CharField(max_length=1224, blank=True)
    is_organization_management = models.BooleanField(
        default=False, help_text="This is the AWS Organizations management account."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["aws_account_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.aws_account_id})"


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    ANALYST = "analyst", "Analyst"
    VIEWER = "viewer", "Viewer"


class AccountMembership(models.Model):
    """A person's role in one account (a person may belong to several)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_memberships")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="uniq_membership_user_account")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} of {self.account}"


def new_detector_id() -> str:
    return secrets.token_hex(16)


class Detector(models.Model):
    class Status(models.TextChoices):
        ENABLED = "ENABLED"
        SUSPENDED = "SUSPENDED"

    class PublishingFrequency(models.TextChoices):
        FIFTEEN_MINUTES = "FIFTEEN_MINUTES", "Every 15 minutes"
        ONE_HOUR = "ONE_HOUR", "Every hour"
        SIX_HOURS = "SIX_HOURS", "Every 6 hours"

    detector_id = models.CharField(max_length=32, unique=True, default=new_detector_id)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="detectors")
    region = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ENABLED)
    finding_publishing_frequency = models.CharField(
        max_length=16, choices=PublishingFrequency.choices, default=PublishingFrequency.SIX_HOURS
    )
    cloudtrail_enabled = models.BooleanField(default=True)
    s3_data_events_enabled = models.BooleanField(default=True)
    flow_logs_enabled = models.BooleanField(default=True)
    dns_logs_enabled = models.BooleanField(default=True)
    tags = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account__aws_account_id", "region"]
        constraints = [models.UniqueConstraint(fields=["account", "region"], name="uniq_detector_account_region")]

    def __str__(self) -> str:
        return f"detector {self.detector_id} ({self.account.aws_account_id}, {self.region})"

    @property
    def arn(self) -> str:
        return f"arn:aws:guardduty:{self.region}:{self.account.aws_account_id}:detector/{self.detector_id}"

    @property
    def is_enabled(self) -> bool:
        return self.status == self.Status.ENABLED


class RelationshipStatus(models.TextChoices):
    CREATED = "Created"
    EMAIL_VERIFICATION_IN_PROGRESS = "EmailVerificationInProgress"
    EMAIL_VERIFICATION_FAILED = "EmailVerificationFailed"
    INVITED = "Invited"
    ENABLED = "Enabled"
    DISABLED = "Disabled"
    REMOVED = "Removed"
    RESIGNED = "Resigned"


# A member in one of these statuses belongs to its administrator: at most one such row per member.
ASSOCIATED_STATUSES = (RelationshipStatus.ENABLED, RelationshipStatus.DISABLED)
# Statuses that block the administrator from suspending or deleting its own detector.
OPEN_MEMBER_STATUSES = (
    RelationshipStatus.CREATED,
    RelationshipStatus.EMAIL_VERIFICATION_IN_PROGRESS,
    RelationshipStatus.EMAIL_VERIFICATION_FAILED,
    RelationshipStatus.INVITED,
    RelationshipStatus.ENABLED,
    RelationshipStatus.DISABLED,
)


def new_invitation_id() -> str:
    return secrets.token_hex(16)


class Member(models.Model):
    """One administrator's record of one member account (GuardDuty's `Member`).

    Vigil associates accounts once for every region (GuardDuty repeats the association per region;
    its users complain about exactly that silo). Visibility is still regional through detectors.
    """

    administrator = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="member_records")
    member = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="administrator_records")
    email = models.EmailField(max_length=64)
    relationship_status = models.CharField(
        max_length=32, choices=RelationshipStatus.choices, default=RelationshipStatus.CREATED
    )
    invitation_id = models.CharField(max_length=32, blank=True)
    invitation_message = models.TextField(blank=True, max_length=1000)
    invited_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["member__aws_account_id"]
        constraints = [
            models.UniqueConstraint(fields=["administrator", "member"], name="uniq_member_admin_member"),
            models.CheckConstraint(condition=~Q(administrator=F("member")), name="member_not_self"),
            # A member has exactly one administrator: enforced by the database, so two concurrent
            # acceptances cannot both succeed.
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(relationship_status__in=["Enabled", "Disabled"]),
                name="uniq_member_one_administrator",
            ),
        ]
        indexes = [models.Index(fields=["administrator", "relationship_status"])]

    def __str__(self) -> str:
        return f"{self.member.aws_account_id} member of {self.administrator.aws_account_id}: {self.relationship_status}"

    @property
    def is_associated(self) -> bool:
        return self.relationship_status in ASSOCIATED_STATUSES


class AuditEvent(models.Model):
    """Who did what to which account. Append-only."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_label = models.CharField(max_length=150, blank=True, help_text="Username at the time, or 'system'.")
    action = models.CharField(max_length=64)
    target = models.CharField(max_length=255, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.target}"


class ApiToken(models.Model):
    """A bearer token for the REST API. Only its SHA-256 is stored; the secret is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
