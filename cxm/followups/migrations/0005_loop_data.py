"""
Moves follow-ups onto the new workflow: "open" and "overdue" become "new" (overdue
is derived from the due time now), each gets its answer's customer, root causes
become rows of the managed list, and the default rules reproduce what opened
follow-ups before rules existed. Existing follow-ups get no team: every CX agent
and manager keeps seeing them, as before.
"""

from django.db import migrations
from django.db.models import Min, OuterRef, Subquery

from cxm.followups import defaults


def forwards(apps, schema_editor):
    FollowUp = apps.get_model("followups", "FollowUp")
    FollowUpEvent = apps.get_model("followups", "FollowUpEvent")
    FollowUpRule = apps.get_model("followups", "FollowUpRule")
    RootCause = apps.get_model("followups", "RootCause")
    Response = apps.get_model("surveys", "Response")

    FollowUp.objects.filter(status__in=["open", "overdue"]).update(status="new")
    FollowUp.objects.update(
        customer_id=Subquery(
            Response.objects.filter(pk=OuterRef("response_id")).values("customer_id")
        )
    )
    # A person who noted or assigned has acted: a kinder answer no longer closes it.
    FollowUp.objects.update(
        touched_at=Subquery(
            FollowUpEvent.objects.filter(
                followup_id=OuterRef("pk"), actor__isnull=False
            )
            .values("followup_id")
            .annotate(first=Min("created_at"))
            .values("first")
        )
    )
    defaults.root_causes_create(RootCause)
    for cause in RootCause.objects.all():
        FollowUp.objects.filter(root_cause=cause.code).update(root_cause_ref=cause)
    # A cause no default knows (none should exist) keeps its code as its name.
    for code in (
        FollowUp.objects.exclude(root_cause="")
        .filter(root_cause_ref__isnull=True)
        .values_list("root_cause", flat=True)
        .distinct()
    ):
        cause = RootCause.objects.create(code=code, name_en=code, name_ko=code)
        FollowUp.objects.filter(root_cause=code).update(root_cause_ref=cause)
    if not FollowUpRule.objects.exists():
        defaults.rules_create(FollowUpRule)


def backwards(apps, schema_editor):
    FollowUp = apps.get_model("followups", "FollowUp")
    FollowUp.objects.exclude(status="resolved").update(status="open")
    for followup in FollowUp.objects.filter(
        root_cause_ref__isnull=False
    ).select_related("root_cause_ref"):
        FollowUp.objects.filter(pk=followup.pk).update(
            root_cause=followup.root_cause_ref.code
        )


class Migration(migrations.Migration):
    dependencies = [
        ("followups", "0004_loop_schema"),
        ("surveys", "0004_campaign_segment"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
