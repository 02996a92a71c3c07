"""Migrations that move the data of before: survey kinds, invitation states."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("surveys", "0001_initial")]
AFTER = [("surveys", "0002_kinds_answers")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps():
    apps = migrate(BEFORE)
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_it_gives_old_responses_their_fact_columns_and_answers(old_apps):
    Customer = old_apps.get_model("customers", "Customer")
    Survey = old_apps.get_model("surveys", "Survey")
    Question = old_apps.get_model("surveys", "Question")
    Campaign = old_apps.get_model("surveys", "Campaign")
    Invitation = old_apps.get_model("surveys", "Invitation")
    Response = old_apps.get_model("surveys", "Response")
    survey = Survey.objects.create(name="NPS", kind="nps")
    Question.objects.create(
        survey=survey, position=1, kind="score", required=True, text="Recommend?"
    )
    Question.objects.create(survey=survey, position=2, kind="comment")
    campaign = Campaign.objects.create(name="Spring", survey=survey)
    rows = []
    for n, (score, comment) in enumerate([(3, "Too slow"), (10, "")]):
        customer = Customer.objects.create(email=f"c{n}@example.com")
        invitation = Invitation.objects.create(
            campaign=campaign, customer=customer, token=f"token{n}"
        )
        rows.append(
            Response.objects.create(invitation=invitation, score=score, comment=comment)
        )

    new_apps = migrate(AFTER)

    Response = new_apps.get_model("surveys", "Response")
    Question = new_apps.get_model("surveys", "Question")
    headline = Question.objects.get(survey_id=survey.pk, position=1)
    reason = Question.objects.get(survey_id=survey.pk, position=2)
    assert (headline.type, headline.role, headline.text_en) == (
        "score",
        "headline",
        "Recommend?",
    )
    assert (reason.type, reason.role, reason.text_en) == ("long_text", "reason", "")
    detractor = Response.objects.get(pk=rows[0].pk)
    assert (detractor.campaign_id, detractor.survey_id, detractor.score) == (
        campaign.pk,
        survey.pk,
        3,
    )
    assert detractor.customer_id == rows[0].invitation.customer_id
    assert detractor.created_at <= timezone.now()
    answers = {(a.question_id, a.number, a.text) for a in detractor.answers.all()}
    assert answers == {(headline.pk, 3, ""), (reason.pk, None, "Too slow")}
    promoter = Response.objects.get(pk=rows[1].pk)
    # No comment, no answer row for it.
    assert [(a.question_id, a.number) for a in promoter.answers.all()] == [
        (headline.pk, 10)
    ]


@pytest.fixture
def apps_before_segments():
    apps = migrate([("surveys", "0003_questions_version")])
    yield apps
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_it_turns_each_campaign_audience_into_a_segment(apps_before_segments):
    Survey = apps_before_segments.get_model("surveys", "Survey")
    Campaign = apps_before_segments.get_model("surveys", "Campaign")
    survey = Survey.objects.create(name="NPS", kind="nps")
    pro = Campaign.objects.create(
        name="Pro", survey=survey, audience={"plan": "pro", "seats": 5}
    )
    everyone = Campaign.objects.create(name="All", survey=survey, audience={})

    new_apps = migrate([("surveys", "0004_campaign_segment")])

    Campaign = new_apps.get_model("surveys", "Campaign")
    pro, everyone = (
        Campaign.objects.get(pk=pro.pk),
        Campaign.objects.get(pk=everyone.pk),
    )
    assert everyone.segment is None
    assert pro.segment.name == f"Pro (campaign {pro.pk})"
    assert pro.segment.match == "all"
    assert pro.segment.conditions == [
        {"type": "property", "name": "plan", "op": "equals", "value": "pro"},
        {"type": "property", "name": "seats", "op": "equals", "value": 5},
    ]


def test_it_gives_invitations_of_before_their_skip_reasons_and_closing_times():
    """Migration 0004: a row "failed" as not contactable was held back: skipped."""
    apps = migrate([("surveys", "0003_questions_version")])
    try:
        Customer = apps.get_model("customers", "Customer")
        Survey = apps.get_model("surveys", "Survey")
        Campaign = apps.get_model("surveys", "Campaign")
        Invitation = apps.get_model("surveys", "Invitation")
        closes = timezone.now() + timedelta(days=3)
        campaign = Campaign.objects.create(
            name="Old", survey=Survey.objects.create(name="NPS"), expires_at=closes
        )
        now = timezone.now()
        customers = {
            name: Customer.objects.create(email=f"{name}@example.com", **fields)
            for name, fields in {
                "gone": {"unsubscribed_at": now},
                "bounced": {"bounced_at": now},
                "late": {},
                "broken": {},
                "sent": {},
            }.items()
        }
        for name, customer in customers.items():
            Invitation.objects.create(
                campaign=campaign,
                customer=customer,
                token=f"t-{name}",
                status="sent" if name == "sent" else "failed",
                sent_at=now if name == "sent" else None,
                last_error="SMTP down" if name == "broken" else "not contactable",
            )

        apps = migrate([("surveys", "0005_invitation_states_reminders_expiry")])

        Invitation = apps.get_model("surveys", "Invitation")
        rows = {
            i.token[2:]: (i.status, i.skip_reason, i.expires_at)
            for i in Invitation.objects.all()
        }
        assert rows == {
            "gone": ("skipped", "unsubscribed", None),
            "bounced": ("skipped", "bounced", None),
            "late": ("skipped", "expired", None),
            "broken": ("failed", "", None),
            "sent": ("sent", "", closes),
        }
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
