"""Rules decide which answers open a follow-up, and how; a changed answer re-decides."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from cxm.customers.services import segment_create
from cxm.followups.models import (
    EventKind,
    FollowUp,
    FollowUpRule,
    FollowUpStatus,
    Priority,
    Team,
)
from cxm.followups.services import (
    followup_add_note,
    followup_open_manual,
    followup_rule_match,
    followup_rule_save,
    team_save,
)
from surveys.services import response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
    agent,
)

pytestmark = pytest.mark.django_db


def answer(score, comment="", kind="nps", customer=None, survey=None):
    survey = survey or SurveyFactory(kind=kind)
    invitation = InvitationFactory(
        campaign=CampaignFactory(survey=survey),
        customer=customer or CustomerFactory(),
    )
    return response_record(invitation=invitation, score=score, comment=comment)


def rule(**fields) -> FollowUpRule:
    fields.setdefault("name", "rule")
    fields.setdefault("position", 1)
    return followup_rule_save(rule=FollowUpRule(**fields))


@pytest.mark.parametrize(
    "kind, opening, not_opening",
    [("nps", [0, 6], [7, 10]), ("csat", [1, 2], [3, 5]), ("ces", [1, 3], [4, 7])],
)
def test_it_reproduces_the_old_behaviour_with_the_default_rules(
    kind, opening, not_opening
):
    for score in opening:
        assert answer(score, kind=kind).followup.rule.survey_kind == kind
    for score in not_opening:
        assert not hasattr(answer(score, kind=kind), "followup")


@pytest.mark.parametrize(
    "kind, score, priority",
    [
        ("nps", 3, "high"),
        ("nps", 4, "normal"),
        ("csat", 1, "high"),
        ("csat", 2, "normal"),
        ("ces", 1, "high"),
        ("ces", 2, "normal"),
    ],
)
def test_it_keeps_todays_priorities_under_the_default_rules(kind, score, priority):
    assert answer(score, kind=kind).followup.priority == priority


def test_it_lets_the_first_matching_rule_decide():
    team = team_save(team=Team(name="Enterprise"))
    rule(
        name="angry enterprise",
        position=0,
        survey_kind="nps",
        score_high=6,
        customer_properties={"plan": "enterprise"},
        priority=Priority.HIGH,
        team=team,
        first_contact_sla_hours=Decimal("4"),
        resolution_sla_hours=Decimal("24"),
    )
    before = timezone.now()

    enterprise = answer(6, customer=CustomerFactory(properties={"plan": "enterprise"}))
    other = answer(6, customer=CustomerFactory(properties={"plan": "free"}))

    followup = enterprise.followup
    assert (followup.rule.name, followup.team, followup.priority) == (
        "angry enterprise",
        team,
        "high",
    )
    assert before + timedelta(hours=4) <= followup.first_contact_due_at
    assert followup.first_contact_due_at < before + timedelta(hours=4, minutes=1)
    assert before + timedelta(hours=24) <= followup.due_at
    assert other.followup.rule.survey_kind == "nps"  # the default rule
    assert other.followup.team is None
    assert other.followup.first_contact_due_at is None


def test_it_matches_words_in_the_comment_in_any_case():
    rule(position=0, comment_words=["refund", "cancel"], priority=Priority.HIGH)

    assert answer(9, comment="I want to CANCEL my plan").followup.priority == "high"
    assert not hasattr(answer(9, comment="All good"), "followup")


def test_it_matches_a_survey_and_a_segment():
    survey = SurveyFactory(kind="csat")
    seoul = segment_create(
        name="Seoul",
        conditions=[
            {"type": "property", "name": "city", "op": "equals", "value": "Seoul"}
        ],
    )
    rule(position=0, survey=survey, segment=seoul, score_low=3, score_high=3)

    inside = CustomerFactory(properties={"city": "Seoul"})
    outside = CustomerFactory(properties={"city": "Busan"})
    assert answer(3, survey=survey, customer=inside).followup.rule.position == 0
    assert not hasattr(answer(3, survey=survey, customer=outside), "followup")
    assert not hasattr(answer(3, kind="csat", customer=inside), "followup")


def test_it_skips_inactive_rules():
    FollowUpRule.objects.filter(survey_kind="nps").update(active=False)

    assert not hasattr(answer(0), "followup")
    assert followup_rule_match(answer(1, kind="csat")).survey_kind == "csat"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"survey_kind": "nps", "score_high": 11}, "score_high"),
        ({"survey_kind": "csat", "score_low": 0}, "score_low"),
        ({"survey_kind": "nps", "score_low": 7, "score_high": 3}, "score_high"),
        ({"score_high": 3}, "survey_kind"),
        ({"comment_words": "refund"}, "comment_words"),
        ({"customer_properties": ["plan"]}, "customer_properties"),
    ],
)
def test_it_refuses_a_rule_that_cannot_match(fields, field):
    count = FollowUpRule.objects.count()

    with pytest.raises(ValidationError) as e:
        rule(**fields)

    assert field in e.value.message_dict
    assert FollowUpRule.objects.count() == count


def test_it_never_opens_two_followups_for_one_answer():
    response = answer(2)

    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(
            response=response, customer=response.customer, due_at=timezone.now()
        )
    with pytest.raises(ValidationError) as e:
        followup_open_manual(
            customer=response.customer, response=response, actor=agent()
        )
    assert e.value.code == "conflict"
    assert FollowUp.objects.count() == 1


def test_it_closes_an_untouched_followup_when_the_detractor_becomes_a_promoter():
    response = answer(3)
    followup = response.followup

    response_record(invitation=response.invitation, score=10)

    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.CLOSED
    assert followup.no_action_needed and followup.closed_at is not None
    kinds = list(followup.events.values_list("kind", flat=True))
    assert kinds[-2:] == [EventKind.ANSWER_CHANGED, EventKind.NO_ACTION_NEEDED]
    assert not FollowUp.objects.overdue(followup.due_at + timedelta(days=1)).exists()


def test_it_keeps_a_followup_someone_acted_on_when_the_answer_turns_kind():
    response = answer(3)
    followup = response.followup
    followup_add_note(followup=followup, actor=agent(), text="Called her")

    response_record(invitation=response.invitation, score=10)

    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW
    assert followup.events.filter(kind=EventKind.ANSWER_CHANGED).exists()


def test_it_opens_a_followup_when_a_kind_answer_turns_unhappy():
    response = answer(9)
    assert not FollowUp.objects.exists()

    response_record(invitation=response.invitation, score=2)

    assert FollowUp.objects.get().response == response


def test_it_opens_a_followup_by_hand_for_a_customer_without_an_answer():
    owner = agent()
    customer = CustomerFactory()

    followup = followup_open_manual(
        customer=customer, actor=owner, owner=owner, note="Complained on the phone"
    )

    assert (followup.customer, followup.response, followup.owner) == (
        customer,
        None,
        owner,
    )
    assert followup.opened_by == owner and followup.touched_at is not None
    opened = followup.events.get(kind=EventKind.OPENED)
    assert (opened.actor, opened.text) == (owner, "Complained on the phone")


def test_it_opens_a_followup_by_hand_for_a_promoters_answer():
    response = answer(10)

    followup = followup_open_manual(
        customer=response.customer, response=response, actor=agent()
    )

    assert followup.response == response and followup.rule is None


def test_it_refuses_to_open_by_hand_for_another_customers_answer():
    response = answer(10)

    with pytest.raises(ValidationError) as e:
        followup_open_manual(customer=CustomerFactory(), response=response, actor=None)

    assert "response" in e.value.message_dict
    assert not FollowUp.objects.exists()
