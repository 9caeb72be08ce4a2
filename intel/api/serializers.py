"""GuardDuty's IPSet / ThreatIntelSet shapes (camelCase, as its REST API), plus Vigil's extras."""

from rest_framework import serializers

from intel.models import IntelSet


class IntelSetCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=300)
    format = serializers.ChoiceField(choices=IntelSet.Format.values)
    location = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")
    # Vigil extension: the list itself, as text, instead of an S3 location (or a multipart "file").
    content = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
    activate = serializers.BooleanField()
    expectedBucketOwner = serializers.RegexField(r"^\d{12}$", required=False, allow_blank=True, default="")
    tags = serializers.DictField(child=serializers.CharField(max_length=256), required=False, default=dict)


class IntelSetUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=300, required=False)
    location = serializers.CharField(max_length=300, required=False)
    content = serializers.CharField(required=False, allow_blank=False, trim_whitespace=False)
    format = serializers.ChoiceField(choices=IntelSet.Format.values, required=False)
    activate = serializers.BooleanField(required=False, allow_null=True, default=None)


class IntelSetOutput(serializers.Serializer):
    name = serializers.CharField()
    format = serializers.CharField()
    location = serializers.SerializerMethodField()
    status = serializers.CharField()
    tags = serializers.DictField()
    expectedBucketOwner = serializers.CharField(source="expected_bucket_owner")
    createdAt = serializers.DateTimeField(source="created_at")
    updatedAt = serializers.DateTimeField(source="updated_at")
    errorDetails = serializers.CharField(source="error_details")
    # Vigil extras
    id = serializers.CharField(source="set_id")
    kind = serializers.CharField()
    region = serializers.CharField()
    version = serializers.SerializerMethodField()
    counts = serializers.SerializerMethodField()
    rejectedTotal = serializers.SerializerMethodField()
    rejected = serializers.SerializerMethodField()

    def get_location(self, obj: IntelSet) -> str:
        return obj.location or f"upload:{obj.upload_name}"

    def get_version(self, obj: IntelSet) -> int | None:
        return obj.active_version.number if obj.active_version else None

    def get_counts(self, obj: IntelSet) -> dict:
        return obj.active_version.counts if obj.active_version else {}

    def _attempt_or_version(self, obj: IntelSet, key: str, default):
        if obj.status == IntelSet.Status.ERROR:
            return (obj.last_attempt or {}).get(key, default)
        return getattr(obj.active_version, key, default) if obj.active_version else default

    def get_rejectedTotal(self, obj: IntelSet) -> int:
        return self._attempt_or_version(obj, "rejected_total", 0)

    def get_rejected(self, obj: IntelSet) -> list:
        return self._attempt_or_version(obj, "rejected", [])


class CheckOutput(serializers.Serializer):
    value = serializers.CharField()
    hits = serializers.ListField(child=serializers.DictField())
    trusted = serializers.BooleanField()
    trusted_list = serializers.CharField()
    finding = serializers.BooleanField()
