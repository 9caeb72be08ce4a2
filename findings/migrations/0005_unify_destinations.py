"""One destination model (schema): Destination gains GuardDuty's publishing-destination fields (data
copied by 0006); findings learn whether a suppression rule archived them."""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q

import findings.rules_models

def fill_destination_ids(apps, schema_editor):
    Destination = apps.get_model("findings", "Destination")
    for pk in Destination.objects.filter(destination_id__isnull=True).values_list("pk", flat=True):
        Destination.objects.filter(pk=pk).update(destination_id=findings.rules_models.new_destination_id())


def mark_suppressed(apps, schema_editor):
    """Findings archived before this column existed: who archived them is unknown, so treat them as
    suppressed (no surprise notifications for findings someone chose to hide)."""
    Finding = apps.get_model("findings", "Finding")
    Finding.objects.filter(archived=True).update(suppressed=True)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("findings", "0004_filter_column_seen_indexes"),
        ("gdapi", "0004_unify_filters"),
    ]

    operations = [
        migrations.AddField(
            model_name="finding",
            name="suppressed",
            field=models.BooleanField(db_default=False, default=False),
        ),
        migrations.RunPython(mark_suppressed, migrations.RunPython.noop, elidable=True),
        migrations.AddField(
            model_name="destination",
            name="destination_id",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.RunPython(fill_destination_ids, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="destination",
            name="destination_id",
            field=models.CharField(default=findings.rules_models.new_destination_id, max_length=32, unique=True),
        ),
        migrations.AddField(
            model_name="destination",
            name="detector",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="finding_destinations", to="accounts.detector"),
        ),
        migrations.AddField(
            model_name="destination",
            name="tags",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="destination",
            name="exported_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="delivery",
            name="kind",
            field=models.CharField(choices=[("NEW", "New"), ("UPDATED", "Updated"), ("TEST", "Test"),
                                            ("EXPORT", "Export")], max_length=8),
        ),
        migrations.AddConstraint(
            model_name="destination",
            constraint=models.UniqueConstraint(condition=Q(detector__isnull=False), fields=("detector",),
                                               name="uniq_destination_detector"),
        ),
    ]
