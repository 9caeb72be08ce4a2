"""GuardDuty's publishing destinations now live in findings.Destination (copied by
findings 0006_copy_publishing_destinations)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("gdapi", "0004_unify_filters"),
        ("findings", "0006_copy_publishing_destinations"),
    ]

    operations = [
        migrations.DeleteModel(name="PublishingDestination"),
    ]
