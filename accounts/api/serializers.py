from rest_framework import serializers

from accounts.models import Account, AuditEvent, Detector, Member


class AccountOutput(serializers.ModelSerializer):
    class Meta:
        model = Account
        fields = ["aws_account_id", "name", "email", "role_arn", "external_id", "is_organization_management", "created_at"]


class AccountInput(serializers.Serializer):
    aws_account_id = serializers.CharField(max_length=12)
    name = serializers.CharField(max_length=100)
    email = serializers.EmailField(max_length=64, required=False, allow_blank=True, default="")
    role_arn = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    external_id = serializers.CharField(max_length=1224, required=False, allow_blank=True, default="")
    is_organization_management = serializers.BooleanField(required=False, default=False)


class MemberOutput(serializers.ModelSerializer):
    account_id = serializers.CharField(source="member.aws_account_id")
    administrator_id = serializers.CharField(source="administrator.aws_account_id")

    class Meta:
        model = Member
        fields = ["account_id", "administrator_id", "email", "relationship_status", "invitation_id", "invited_at", "updated_at"]


class InvitationOutput(serializers.ModelSerializer):
    account_id = serializers.CharField(source="administrator.aws_account_id")

    class Meta:
        model = Member
        fields = ["account_id", "invitation_id", "relationship_status", "invited_at", "invitation_message"]


class AccountDetailInput(serializers.Serializer):
    account_id = serializers.CharField(max_length=12)
    email = serializers.CharField(max_length=64)


class MembersCreateInput(serializers.Serializer):
    account_details = AccountDetailInput(many=True, allow_empty=False)


class AccountIdsInput(serializers.Serializer):
    account_ids = serializers.ListField(child=serializers.CharField(max_length=12), allow_empty=False, max_length=50)
    message = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class InvitationAcceptInput(serializers.Serializer):
    administrator_id = serializers.CharField(max_length=12)
    invitation_id = serializers.CharField(max_length=64)


class DetectorOutput(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.aws_account_id")
    data_sources = serializers.SerializerMethodField()

    class Meta:
        model = Detector
        fields = ["detector_id", "account_id", "region", "status", "finding_publishing_frequency", "data_sources",
                  "tags", "created_at", "updated_at"]

    def get_data_sources(self, obj: Detector) -> dict[str, bool]:
        return {"cloudtrail": obj.cloudtrail_enabled, "s3_data_events": obj.s3_data_events_enabled,
                "flow_logs": obj.flow_logs_enabled, "dns_logs": obj.dns_logs_enabled}


class DataSourcesInput(serializers.Serializer):
    cloudtrail = serializers.BooleanField(required=False)
    s3_data_events = serializers.BooleanField(required=False)
    flow_logs = serializers.BooleanField(required=False)
    dns_logs = serializers.BooleanField(required=False)


class DetectorCreateInput(serializers.Serializer):
    account_id = serializers.CharField(max_length=12)
    region = serializers.CharField(max_length=32)
    enable = serializers.BooleanField(default=True)
    finding_publishing_frequency = serializers.ChoiceField(choices=Detector.PublishingFrequency.choices, required=False)
    data_sources = DataSourcesInput(required=False)
    tags = serializers.DictField(child=serializers.CharField(max_length=256), required=False)


class DetectorUpdateInput(serializers.Serializer):
    finding_publishing_frequency = serializers.ChoiceField(choices=Detector.PublishingFrequency.choices, required=False)
    data_sources = DataSourcesInput(required=False)
    tags = serializers.DictField(child=serializers.CharField(max_length=256), required=False)


class DetectorDeleteInput(serializers.Serializer):
    confirm = serializers.CharField(max_length=64)


class UnprocessedOutput(serializers.Serializer):
    account_id = serializers.CharField()
    result = serializers.CharField()


class AuditEventOutput(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["created_at", "actor_label", "action", "target", "details"]
