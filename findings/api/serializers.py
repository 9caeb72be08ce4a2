from rest_framework import serializers

from findings.rules_models import Delivery, Destination, SavedFilter


class FindingPageOutput(serializers.Serializer):
    findings = serializers.ListField(child=serializers.DictField(), help_text="GuardDuty GetFindings JSON.")
    next_cursor = serializers.CharField(allow_null=True)


class FindingIdsInput(serializers.Serializer):
    finding_ids = serializers.ListField(child=serializers.CharField(max_length=32), min_length=1, max_length=1000)


class FeedbackInput(FindingIdsInput):
    feedback = serializers.ChoiceField(choices=["USEFUL", "NOT_USEFUL"])
    comments = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class CountOutput(serializers.Serializer):
    count = serializers.IntegerField()


class NamedCount(serializers.Serializer):
    key = serializers.CharField()
    count = serializers.IntegerField()


class StatisticsOutput(serializers.Serializer):
    total = serializers.IntegerField()
    count_by_severity = serializers.DictField(child=serializers.IntegerField())
    by_type = NamedCount(many=True)
    by_account = NamedCount(many=True)
    by_date = NamedCount(many=True)


class FilterOutput(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.aws_account_id")

    class Meta:
        model = SavedFilter
        fields = ["id", "account_id", "name", "description", "action", "rank", "criteria", "suppressed_count",
                  "created_at", "updated_at"]


class FilterInput(serializers.Serializer):
    account_id = serializers.CharField(max_length=12, required=False)
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=512, required=False, allow_blank=True, default="")
    action = serializers.ChoiceField(choices=SavedFilter.Action.choices, default=SavedFilter.Action.NOOP)
    rank = serializers.IntegerField(min_value=1, max_value=100, default=1)
    criteria = serializers.JSONField()


class FilterPreviewInput(serializers.Serializer):
    account_id = serializers.CharField(max_length=12)
    criteria = serializers.JSONField()


class DestinationOutput(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.aws_account_id")
    region = serializers.CharField(source="detector.region", allow_null=True, default=None,
                                   help_text="Set for a detector's S3 export (GuardDuty publishing destination).")

    class Meta:
        model = Destination
        fields = ["id", "destination_id", "account_id", "region", "name", "kind", "url", "config", "min_severity",
                  "criteria", "enabled", "status", "export_status", "last_error", "failing_since", "last_success_at",
                  "refused_count", "exported_until", "tags", "created_at"]


class DestinationInput(serializers.Serializer):
    account_id = serializers.CharField(max_length=12, required=False)
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=Destination.Kind.choices)
    url = serializers.CharField(max_length=2048, required=False, allow_blank=True, default="")
    config = serializers.DictField(required=False, default=dict)
    min_severity = serializers.FloatField(min_value=1.0, max_value=10.0, default=1.0)
    criteria = serializers.JSONField(required=False, default=dict)
    enabled = serializers.BooleanField(required=False, default=True)


class DeliveryOutput(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "kind", "status", "attempts", "status_code", "response", "error", "created_at", "delivered_at"]
