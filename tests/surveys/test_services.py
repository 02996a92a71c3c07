"""Surveys, sending a campaign and recording an answer, through the real services."""

import base64
import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cxm.customers.services import (
    customer_mark_bounced,
    customer_unsubscribe,
    segment_create,
)
from cxm.followups.models import FollowUp
from surveys.models import (
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    QuestionRole,
    QuestionType,
    Response,
)
from surveys.services import campaign_send, response_record, survey_create
from surveys.signals import response_recorded
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
)

pytestmark = pytest.mark.django_db


# Surveys


def test_it_gives_an_nps_survey_a_required_score_question_first():
    survey = survey_create(name="Relationship NPS")

    score = survey.questions.get(position=1)
    assert (score.type, score.role) == (QuestionType.SCORE, QuestionRole.HEADLINE)
    assert score.required is True
    assert score.scale == (0, 10)


def test_it_gives_an_nps_survey_a_comment_question():
    survey = survey_create(name="Relationship NPS")

    questions = survey.questions.order_by("position").values_list("type", "role")
    assert list(questions) == [
        (QuestionType.SCORE, QuestionRole.HEADLINE),
        (QuestionType.LONG_TEXT, QuestionRole.REASON),
    ]
    assert survey.questions.get(role=QuestionRole.REASON).required is False


def test_it_asks_the_score_question_about_the_company(settings):
    settings.COMPANY_NAME = "Acme Widgets"
    survey = survey_create(name="Relationship NPS")

    score = survey.questions.get(role=QuestionRole.HEADLINE)

    assert score.display_text() == (
        "How likely are you to recommend Acme Widgets to a friend or colleague?"
    )


# Sending a campaign


def test_it_creates_one_invitation_per_eligible_customer():
    customers = CustomerFactory.create_batch(3)
    campaign = CampaignFactory()

    assert campaign_send(campaign=campaign) == 3

    invited = Invitation.objects.filter(campaign=campaign)
    assert sorted(invited.values_list("customer_id", flat=True)) == sorted(
        c.pk for c in customers
    )
    assert set(invited.values_list("status", flat=True)) == {InvitationStatus.QUEUED}
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING
    assert campaign.sent_at is not None


def test_it_refuses_a_second_invitation_for_a_customer_in_the_database():
    invitation = InvitationFactory()

    with pytest.raises(IntegrityError), transaction.atomic():
        Invitation.objects.create(
            campaign=invitation.campaign, customer=invitation.customer
        )

    assert Invitation.objects.count() == 1


def test_it_invites_only_customers_not_yet_invited_to_the_campaign():
    """A customer invited before the send (the API, an import) is not invited again."""
    already, new = CustomerFactory.create_batch(2)
    campaign = CampaignFactory()
    Invitation.objects.create(campaign=campaign, customer=already)

    assert campaign_send(campaign=campaign) == 1

    assert sorted(
        Invitation.objects.filter(campaign=campaign).values_list(
            "customer_id", flat=True
        )
    ) == sorted([already.pk, new.pk])


def test_it_skips_unsubscribed_and_bounced_customers():
    reachable = CustomerFactory()
    customer_unsubscribe(customer=CustomerFactory())
    customer_mark_bounced(customer_id=CustomerFactory().pk)
    campaign = CampaignFactory()

    assert campaign_send(campaign=campaign) == 1

    assert list(
        Invitation.objects.filter(campaign=campaign).values_list("customer", flat=True)
    ) == [reachable.pk]


def equals_segment(name, value):
    return segment_create(
        name=f"{name}={value}",
        conditions=[{"type": "property", "name": name, "op": "equals", "value": value}],
    )


def test_it_invites_the_campaigns_segment():
    pro = CustomerFactory(properties={"plan": "pro", "region": "eu"})
    CustomerFactory(properties={"plan": "free", "region": "eu"})
    CustomerFactory(properties={})
    campaign = CampaignFactory(segment=equals_segment("plan", "pro"))

    assert campaign_send(campaign=campaign) == 1

    assert Invitation.objects.get(campaign=campaign).customer == pro


@pytest.mark.parametrize("key", ["contains", "isnull", "exact", "in", "has_key"])
def test_it_selects_by_a_property_named_like_a_database_lookup(key):
    member = CustomerFactory(properties={key: "yes"})
    CustomerFactory(properties={key: "no"})
    CustomerFactory(properties={"plan": "pro"})
    campaign = CampaignFactory(segment=equals_segment(key, "yes"))

    assert campaign_send(campaign=campaign) == 1

    assert Invitation.objects.get(campaign=campaign).customer == member


def test_it_targets_all_customers_when_a_campaign_has_only_a_name_and_survey():
    customers = CustomerFactory.create_batch(2, properties={"plan": "free"})
    customers.append(CustomerFactory(properties={}))
    campaign = Campaign.objects.create(name="Everyone", survey=SurveyFactory())

    assert campaign.segment is None
    assert campaign_send(campaign=campaign) == 3
    assert Invitation.objects.filter(campaign=campaign).count() == 3


def test_it_refuses_to_send_a_campaign_twice_and_creates_nothing():
    CustomerFactory()
    campaign = CampaignFactory()
    campaign_send(campaign=campaign)
    CustomerFactory()  # a newcomer must not be invited by a second send

    with pytest.raises(ValidationError):
        campaign_send(campaign=campaign)

    assert Invitation.objects.filter(campaign=campaign).count() == 1


def test_it_refuses_to_send_an_expired_campaign():
    CustomerFactory()
    campaign = CampaignFactory(expires_at=timezone.now() - timedelta(minutes=1))

    with pytest.raises(ValidationError):
        campaign_send(campaign=campaign)

    assert not Invitation.objects.filter(campaign=campaign).exists()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.DRAFT


def test_it_gives_each_invitation_a_unique_random_token_of_at_least_128_bits():
    CustomerFactory.create_batch(50)
    campaign = CampaignFactory()
    campaign_send(campaign=campaign)

    tokens = list(Invitation.objects.values_list("token", flat=True))

    assert len(tokens) == 50 and len(set(tokens)) == 50
    for token in tokens:
        # URL-safe base64 of at least 16 random bytes: 22+ characters, 32 for 24.
        assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
        assert len(token) >= 32
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128


# Recording an answer


def test_it_records_a_response_and_marks_the_invitation_answered():
    invitation = InvitationFactory()

    response = response_record(invitation=invitation, score=9, comment="  Great!  ")

    assert Response.objects.get() == response
    assert response.invitation == invitation
    assert (response.score, response.comment) == (9, "Great!")
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ANSWERED
    assert invitation.answered_at is not None


def test_it_updates_the_same_response_when_answered_again():
    invitation = InvitationFactory()
    first = response_record(invitation=invitation, score=4, comment="slow")
    answered_at = Invitation.objects.get(pk=invitation.pk).answered_at

    second = response_record(invitation=invitation, score=7, comment="better now")

    assert second.pk == first.pk
    assert Response.objects.count() == 1
    assert Response.objects.values_list("score", "comment").get() == (7, "better now")
    # The first answer's time stays the invitation's answered time.
    assert Invitation.objects.get(pk=invitation.pk).answered_at == answered_at


def test_it_refuses_a_second_response_row_for_an_invitation_in_the_database():
    invitation = InvitationFactory()
    response_record(invitation=invitation, score=8)

    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.create(
            invitation=invitation,
            campaign=invitation.campaign,
            survey=invitation.campaign.survey,
            customer=invitation.customer,
            score=3,
        )

    assert Response.objects.count() == 1


@pytest.mark.parametrize("score", [-1, 11, 100, True, False, "7", 7.0, None], ids=repr)
def test_it_refuses_a_score_outside_0_to_10_or_not_an_integer_and_saves_nothing(
    score,
):
    invitation = InvitationFactory()

    with pytest.raises(ValidationError) as e:
        response_record(invitation=invitation, score=score)

    assert "score" in e.value.message_dict
    assert not Response.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.QUEUED
    assert invitation.answered_at is None


def test_it_refuses_an_answer_after_the_campaign_expired():
    invitation = InvitationFactory(
        campaign__expires_at=timezone.now() - timedelta(seconds=1)
    )

    with pytest.raises(ValidationError):
        response_record(invitation=invitation, score=9)

    assert not Response.objects.exists()
    assert Invitation.objects.get(pk=invitation.pk).answered_at is None


def test_it_opens_the_followup_of_a_detractor_with_the_response():
    invitation = InvitationFactory()

    response = response_record(invitation=invitation, score=2, comment="broken")

    assert FollowUp.objects.get().response == response


def test_it_fires_response_recorded_inside_the_transaction_of_the_response():
    """A receiver that fails takes the response and the answered state with it."""
    invitation = InvitationFactory()
    seen = []

    def receiver(sender, *, response, created, **kwargs):
        assert Response.objects.filter(pk=response.pk).exists()  # saved already
        seen.append((response.score, created))
        raise RuntimeError("receiver failed")

    response_recorded.connect(receiver, dispatch_uid="test-receiver")
    try:
        with pytest.raises(RuntimeError):
            response_record(invitation=invitation, score=1)
    finally:
        response_recorded.disconnect(dispatch_uid="test-receiver")

    assert seen == [(1, True)]
    assert not Response.objects.exists()
    assert not FollowUp.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.QUEUED


def test_it_changes_a_draft_campaign_and_nothing_once_it_is_sent():
    from surveys.services import campaign_update

    campaign = CampaignFactory(name="Spring")
    pro = equals_segment("plan", "pro")
    campaign_update(campaign=campaign, name="Spring sale", segment=pro)
    campaign.refresh_from_db()
    assert (campaign.name, campaign.segment) == ("Spring sale", pro)

    campaign_send(campaign=campaign)
    with pytest.raises(ValidationError) as e:
        campaign_update(campaign=campaign, name="Autumn")
    assert e.value.message_dict == {"status": ["Only a draft campaign can be changed."]}
    campaign.refresh_from_db()
    assert campaign.name == "Spring sale"
