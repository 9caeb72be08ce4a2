"""One destination model (data): GuardDuty's publishing destinations (gdapi.PublishingDestination)
become S3-export Destinations bound to their detector. In its own migration so PostgreSQL never
alters a table with row changes pending in the same transaction (either direction)."""

import re

from django.db import migrations

BUCKET_ARN_RE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):s3:::(?P<bucket>[^/]+)(?:/(?P<prefix>.*))?$")


def copy_publishing_destinations(apps, schema_editor):
    """Each GuardDuty publishing destination becomes an S3 export of its detector's account, keeping
    its DestinationId, properties, tags, failure state and export watermark."""
    Old = apps.get_model("gdapi", "PublishingDestination")
    Destination = apps.get_model("findings", "Destination")
    for old in Old.objects.select_related("detector").iterator():
        match = BUCKET_ARN_RE.match(old.destination_arn)
        if match is None:  # validated on write; never seen, but never invent a bucket
            continue
        config = {"bucket": match["bucket"], "kms_key_arn": old.kms_key_arn}
        if match["prefix"]:
            config["prefix"] = match["prefix"]
        if match["partition"] != "aws":
            config["partition"] = match["partition"]
        if old.expected_bucket_owner:
            config["expected_bucket_owner"] = old.expected_bucket_owner
        failing = old.status == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
        Destination.objects.create(
            account_id=old.detector.account_id, detector_id=old.detector_id, destination_id=old.destination_id,
            name=f"GuardDuty export {old.detector.region} ({old.destination_id[:8]})", kind="s3", config=config,
            tags=old.tags or {}, enabled=old.status != "STOPPED", status="FAILING" if failing else "OK",
            failing_since=old.failure_started_at if failing else None, last_error=old.last_error,
            last_success_at=old.updated_at if old.status == "PUBLISHING" else None,
            exported_until=old.exported_until,
        )


def copy_back(apps, schema_editor):
    Old = apps.get_model("gdapi", "PublishingDestination")
    Destination = apps.get_model("findings", "Destination")
    for d in Destination.objects.filter(detector__isnull=False, kind="s3"):
        config = d.config or {}
        prefix = config.get("prefix")
        arn = f"arn:{config.get('partition', 'aws')}:s3:::{config['bucket']}" + (f"/{prefix}" if prefix else "")
        status = ("STOPPED" if not d.enabled else "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
                  if d.status == "FAILING" else "PUBLISHING" if d.last_success_at else "PENDING_VERIFICATION")
        Old.objects.create(detector_id=d.detector_id, destination_id=d.destination_id, destination_arn=arn,
                           kms_key_arn=config.get("kms_key_arn", ""),
                           expected_bucket_owner=config.get("expected_bucket_owner", ""), status=status,
                           failure_started_at=d.failing_since, last_error=d.last_error,
                           exported_until=d.exported_until, tags=d.tags)
        d.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("findings", "0005_unify_destinations"),
        ("gdapi", "0004_unify_filters"),
    ]

    operations = [
        migrations.RunPython(copy_publishing_destinations, copy_back),
    ]
