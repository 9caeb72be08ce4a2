from __future__ import annotations

import csv
import io

from django import forms
from django.conf import settings

from accounts.models import Detector, Role, aws_account_id_validator


class AccountCreateForm(forms.Form):
    aws_account_id = forms.CharField(label="AWS account id", max_length=12, validators=[aws_account_id_validator])
    name = forms.CharField(max_length=100)
    email = forms.EmailField(max_length=64, required=False)
    role_arn = forms.CharField(label="Role ARN Vigil assumes", max_length=2048, required=False)
    external_id = forms.CharField(max_length=1224, required=False)
    is_organization_management = forms.BooleanField(label="This is the AWS Organizations management account", required=False)


class AccountSettingsForm(forms.Form):
    name = forms.CharField(max_length=100)
    email = forms.EmailField(max_length=64, required=False)
    role_arn = forms.CharField(label="Role ARN Vigil assumes", max_length=2048, required=False)
    external_id = forms.CharField(max_length=1224, required=False)
    is_organization_management = forms.BooleanField(label="This is the AWS Organizations management account", required=False)


class MemberAddForm(forms.Form):
    """One member (id + email), or many as CSV lines `Account ID,Email` (GuardDuty's upload)."""

    account_id = forms.CharField(label="AWS account id", max_length=12, required=False)
    email = forms.EmailField(max_length=64, required=False)
    csv = forms.CharField(label="Or paste CSV (Account ID,Email)", widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean(self) -> dict:
        data = super().clean()
        details: list[dict[str, str]] = []
        if data.get("account_id") or data.get("email"):
            if not data.get("account_id") or not data.get("email"):
                raise forms.ValidationError("Give both the account id and the email.")
            details.append({"account_id": data["account_id"].strip(), "email": data["email"].strip()})
        for number, row in enumerate(csv.reader(io.StringIO(data.get("csv") or "")), start=1):
            if not row or (number == 1 and row[0].strip().lower() == "account id"):
                continue
            if len(row) != 2:
                raise forms.ValidationError(f"CSV line {number}: expected 'Account ID,Email'.")
            details.append({"account_id": row[0].strip(), "email": row[1].strip()})
        if not details:
            raise forms.ValidationError("Give an account id and email, or CSV lines.")
        if len(details) > settings.VIGIL_BULK_ACCOUNTS_MAX:
            raise forms.ValidationError(f"At most {settings.VIGIL_BULK_ACCOUNTS_MAX} accounts at a time.")
        data["details"] = details
        return data


class MemberActionForm(forms.Form):
    ACTIONS = ["invite", "disassociate", "delete", "stop_monitoring", "start_monitoring"]
    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    account_ids = forms.MultipleChoiceField(choices=[], error_messages={"required": "Select at least one member."})
    message = forms.CharField(max_length=1000, required=False)

    def __init__(self, *args, member_ids: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["account_ids"].choices = [(a, a) for a in member_ids]


class DetectorCreateForm(forms.Form):
    region = forms.ChoiceField(choices=[])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [(r, r) for r in settings.VIGIL_REGIONS]


class DetectorSettingsForm(forms.Form):
    finding_publishing_frequency = forms.ChoiceField(choices=Detector.PublishingFrequency.choices)
    cloudtrail = forms.BooleanField(required=False, label="CloudTrail management events")
    s3_data_events = forms.BooleanField(required=False, label="S3 data events")
    flow_logs = forms.BooleanField(required=False, label="VPC Flow Logs")
    dns_logs = forms.BooleanField(required=False, label="Route 53 Resolver DNS logs")


class AccountUserForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)
    password = forms.CharField(widget=forms.PasswordInput, required=False, help_text="Only to create a new user.")
