import django.db.models.deletion
from django.db import migrations, models


def audiences_to_segments(apps, schema_editor):
    """Each campaign's audience (exact property values) becomes a segment."""
    Campaign = apps.get_model("surveys", "Campaign")
    Segment = apps.get_model("customers", "Segment")
    for campaign in Campaign.objects.exclude(audience={}).iterator():
        name = f"{campaign.name[:150]} (campaign {campaign.pk})"
        campaign.segment = Segment.objects.create(
            name=name,
            description=f"The audience of the campaign {campaign.name!r}.",
            match="all",
            conditions=[
                {"type": "property", "name": key, "op": "equals", "value": value}
                for key, value in campaign.audience.items()
            ],
        )
        campaign.save(update_fields=["segment"])


def segments_to_audiences(apps, schema_editor):
    """Back: a segment of property equalities only becomes an audience again."""
    Campaign = apps.get_model("surveys", "Campaign")
    for campaign in Campaign.objects.filter(segment__isnull=False).select_related(
        "segment"
    ):
        conditions = campaign.segment.conditions
        if campaign.segment.match == "all" and all(
            c.get("type") == "property" and c.get("op") == "equals"
            for c in conditions
        ):
            campaign.audience = {c["name"]: c["value"] for c in conditions}
            campaign.save(update_fields=["audience"])


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_segment"),
        ("surveys", "0003_questions_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="segment",
            field=models.ForeignKey(
                blank=True,
                help_text="The customers to invite. Empty: all customers.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="campaigns",
                to="customers.segment",
                verbose_name="segment",
            ),
        ),
        migrations.RunPython(audiences_to_segments, segments_to_audiences),
        migrations.RemoveField(model_name="campaign", name="audience"),
    ]
