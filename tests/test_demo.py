"""The demo data `make run` loads: a whole closed loop, loaded once."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from cxm.customers.models import Customer
from cxm.followups.models import FollowUp, FollowUpEvent, FollowUpStatus
from cxm.outbox.models import OutboxEmail
from journeys.models import Journey, Stage, Touchpoint
from surveys.kinds import Tone, is_negative, score_bucket
from surveys.models import (
    Answer,
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    Response,
)

pytestmark = pytest.mark.django_db

MODELS = [
    get_user_model(),
    Customer,
    Campaign,
    Invitation,
    Response,
    FollowUp,
    FollowUpEvent,
    OutboxEmail,
    Journey,
    Stage,
    Touchpoint,
]


def demo_load() -> str:
    out = StringIO()
    call_command("demo_load", stdout=out)
    return out.getvalue()


def counts() -> dict:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture(scope="module")
def loaded(django_db_setup, django_db_blocker):
    """Loads the demo once for the module's tests, and rolls it back after them."""
    outbox = override_settings(EMAIL_BACKEND="cxm.outbox.backends.EmailBackend")
    with django_db_blocker.unblock(), outbox, transaction.atomic():
        demo_load()
        yield
        transaction.set_rollback(True)


def test_it_loads_customers_in_both_languages_with_properties(loaded):
    assert 250 <= Customer.objects.count() <= 350
    locales = set(Customer.objects.values_list("locale", flat=True))
    assert locales == {"en", "ko"}
    plans = {c.properties["plan"] for c in Customer.objects.all()}
    assert plans == {"free", "pro", "enterprise"}
    assert all(c.properties.get("region") for c in Customer.objects.all())


def test_it_sends_a_campaign_whose_emails_are_in_the_outbox(loaded):
    sent = Campaign.objects.get(status=CampaignStatus.SENT, survey__kind="nps")
    invitations = sent.invitations.all()

    assert invitations.count() > 200
    assert not invitations.filter(
        status__in=[InvitationStatus.QUEUED, InvitationStatus.SENDING]
    ).exists()
    token = invitations.first().token
    assert OutboxEmail.objects.filter(body_text__contains=f"/s/{token}/").exists()


def test_it_records_answers_of_every_kind_and_tone(loaded):
    responses = Response.objects.select_related("survey")
    invited = Invitation.objects.count()

    assert 0.3 * invited <= responses.count() <= 0.5 * invited
    tones = {
        (r.survey.kind, score_bucket(r.survey.kind, r.score).tone) for r in responses
    }
    assert tones == {(kind, tone) for kind in ("nps", "csat", "ces") for tone in Tone}
    assert responses.exclude(comment="").exists()
    assert Answer.objects.filter(question__type="single_choice").exists()
    assert Invitation.objects.filter(status=InvitationStatus.ANSWERED).count() == (
        responses.count()
    )


def test_it_opens_followups_open_overdue_and_resolved(loaded):
    unhappy = [
        r
        for r in Response.objects.select_related("survey")
        if is_negative(r.survey.kind, r.score)
    ]
    by_status = dict(
        FollowUp.objects.values_list("status").annotate(n=Count("pk")).order_by()
    )

    assert FollowUp.objects.count() == len(unhappy)
    assert {r.survey.kind for r in unhappy} == {"nps", "csat", "ces"}
    assert set(by_status) == set(FollowUpStatus.values)
    assert all(n > 0 for n in by_status.values())
    assert not FollowUp.objects.filter(owner__isnull=True).exists()
    overdue = FollowUp.objects.overdue()
    assert overdue.exists()
    assert not overdue.filter(escalated_at__isnull=True).exists()


def test_it_emails_owners_and_managers(loaded):
    subjects = OutboxEmail.objects.values_list("subject", flat=True)

    assert any("Overdue" in s for s in subjects)
    manager = get_user_model().objects.get(groups__name="CX managers")
    assert OutboxEmail.objects.filter(to__contains=manager.email).exists()
    assert not FollowUp.objects.filter(owner_notified_at__isnull=True).exists()


def test_it_adds_a_draft_campaign_for_pro_customers_and_a_journey(loaded):
    draft = Campaign.objects.get(status=CampaignStatus.DRAFT)
    assert draft.segment.name == "Pro plan"
    assert draft.segment.conditions == [
        {"type": "property", "name": "plan", "op": "equals", "value": "pro"}
    ]

    journey = Journey.objects.get()
    stages = list(journey.stages.values_list("name", flat=True))
    assert [s.lower() for s in stages] == [
        "awareness",
        "consideration",
        "purchase",
        "use",
        "loyalty",
    ]
    assert Touchpoint.objects.filter(stage__journey=journey).count() >= 5


def test_it_draws_a_live_journey_map(loaded):
    from journeys.selectors import journey_map

    today = timezone.localdate()
    m = journey_map(
        journey=Journey.objects.get(), since=today - timedelta(days=89), until=today
    )
    measured = [t for t in m.touchpoints if t.metric and t.metric.responses]
    assert {t.kind for t in measured} == {"nps", "csat", "ces"}
    assert m.stages[0].reached > m.stages[2].reached > 0
    assert all(s.next_share is not None for s in m.stages[:-1])
    assert m.pain_points


def test_it_changes_nothing_when_run_again(loaded):
    before = counts()

    out = demo_load()

    assert "Demo data already loaded" in out
    assert counts() == before
