"""Recording answers to every question type through response_record."""

import pytest
from django.core.exceptions import ValidationError

from cxm.followups.models import EventKind, FollowUp
from surveys.models import Answer, InvitationStatus, Response, ResponseRevision
from surveys.services import response_record, survey_create
from surveys.signals import response_recorded
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db

FAST = {"value": "fast", "en": "Fast delivery", "ko": "빠른 배송"}
PRICE = {"value": "price", "en": "Fair price", "ko": "합리적인 가격"}
HELP = {"value": "help", "en": "Helpful staff", "ko": "친절한 직원"}


@pytest.fixture
def survey():
    """An NPS survey with one extra question of every other type."""
    return survey_create(
        name="Everything",
        kind="nps",
        questions=[
            {"type": "single_choice", "text_en": "Plan?", "choices": [FAST, PRICE]},
            {
                "type": "multiple_choice",
                "text_en": "What mattered?",
                "choices": [FAST, PRICE, HELP],
            },
            {"type": "short_text", "text_en": "Your role?", "required": True},
            {"type": "score", "text_en": "Setup?", "scale_low": 1, "scale_high": 4},
        ],
    )


@pytest.fixture
def invitation(survey):
    return InvitationFactory(campaign__survey=survey)


def names(survey) -> dict:
    """The answer field names by question type (score and comment are standard)."""
    return {
        q.type if not q.role else q.role: q.field_name for q in survey.questions.all()
    }


def test_it_stores_one_answer_per_question_and_the_fact_row(survey, invitation):
    n = names(survey)

    response = response_record(
        invitation=invitation,
        answers={
            "score": 8,
            "comment": " Quick ",
            n["single_choice"]: "price",
            n["multiple_choice"]: ["help", "fast"],
            n["short_text"]: "CTO",
            n["score"]: 4,
        },
    )

    assert (response.score, response.comment) == (8, "Quick")
    assert (response.campaign, response.survey, response.customer) == (
        invitation.campaign,
        survey,
        invitation.customer,
    )
    values = {a.question.field_name: a.value for a in response.answers.all()}
    assert values == {
        "score": 8,
        "comment": "Quick",
        n["single_choice"]: ["price"],
        n["multiple_choice"]: ["fast", "help"],  # in the choices' order
        n["short_text"]: "CTO",
        n["score"]: 4,
    }


@pytest.mark.parametrize(
    "question, value, message",
    [
        ("single_choice", "gold", "Choose one of the options shown."),
        ("single_choice", ["fast", "price"], "Choose one of the options shown."),
        ("multiple_choice", ["fast", "nope"], "Choose one of the options shown."),
        ("short_text", "x" * 201, "Please write at most 200 characters."),
        ("short_text", "", "Please answer this question."),
        ("short_text", "a\x00b", "This text holds characters we cannot store."),
        ("short_text", 5, "Write your answer as text."),
        ("score", 5, "Choose a score from 1 to 4."),
        ("score", "3", "Choose a score from 1 to 4."),
    ],
)
def test_it_names_the_question_of_a_bad_answer_and_saves_nothing(
    survey, invitation, question, value, message
):
    field = names(survey)[question]

    with pytest.raises(ValidationError) as e:
        response_record(invitation=invitation, answers={"score": 9, field: value})

    assert e.value.message_dict == {field: [message]}
    assert not Response.objects.exists()
    assert not Answer.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status != InvitationStatus.ANSWERED


def test_it_refuses_a_question_of_another_survey(invitation):
    with pytest.raises(ValidationError) as e:
        response_record(invitation=invitation, answers={"score": 9, "q999999": "x"})
    assert e.value.message_dict == {"q999999": ["This survey has no such question."]}


def test_it_saves_the_score_first_and_the_rest_later(survey, invitation):
    """The one-tap score from the email, then the other questions on the next page."""
    n = names(survey)
    response = response_record(invitation=invitation, answers={"score": 3})
    assert response.answers.count() == 1

    response_record(
        invitation=invitation,
        answers={"comment": "slow", n["short_text"]: "Buyer", n["multiple_choice"]: []},
    )

    response.refresh_from_db()
    assert (response.score, response.comment) == (3, "slow")
    assert response.answers.count() == 3


def test_it_needs_the_score_for_a_new_response_of_a_standard_kind(survey, invitation):
    with pytest.raises(ValidationError) as e:
        response_record(invitation=invitation, answers={"comment": "hi"})
    assert e.value.message_dict == {"score": ["Please choose a score."]}


def test_it_needs_some_answer_for_a_new_response_of_a_custom_survey():
    custom = survey_create(
        name="C", kind="custom", questions=[{"type": "long_text", "text_en": "Hi?"}]
    )
    invitation = InvitationFactory(campaign__survey=custom)
    field = custom.questions.get().field_name

    with pytest.raises(ValidationError) as e:
        response_record(invitation=invitation, answers={field: "  "})
    assert e.value.messages == ["Please answer at least one question."]

    response = response_record(invitation=invitation, answers={field: "Hello"})
    assert response.score is None
    assert response.answers.get().text == "Hello"


def test_it_clears_an_optional_answer_sent_empty(survey, invitation):
    n = names(survey)
    response_record(
        invitation=invitation, answers={"score": 9, n["multiple_choice"]: ["fast"]}
    )

    response_record(invitation=invitation, answers={n["multiple_choice"]: []})

    assert not Answer.objects.filter(question__type="multiple_choice").exists()


def test_it_keeps_the_earlier_version_of_a_changed_answer(invitation):
    first = response_record(invitation=invitation, score=4, comment="slow")

    response_record(invitation=invitation, score=9, comment="fixed")

    revision = ResponseRevision.objects.get()
    assert revision.response == first
    assert (revision.score, revision.comment) == (4, "slow")
    assert sorted(revision.answers.values(), key=str) == [4, "slow"]
    assert Response.objects.get().score == 9


def test_it_changes_and_records_nothing_when_the_same_answer_comes_again(invitation):
    """Twenty identical submissions are one answer, with one timeline entry."""
    seen = []

    def receiver(sender, **kwargs):
        seen.append(kwargs["created"])

    response_recorded.connect(receiver, dispatch_uid="test-same-answer")
    try:
        for _ in range(20):
            response_record(invitation=invitation, score=2, comment="late")
    finally:
        response_recorded.disconnect(dispatch_uid="test-same-answer")

    assert seen == [True]
    assert not ResponseRevision.objects.exists()
    followup = FollowUp.objects.get()
    assert not followup.events.filter(kind=EventKind.ANSWER_CHANGED).exists()


@pytest.mark.parametrize(
    "kind, unhappy, happy", [("nps", 6, 7), ("csat", 2, 3), ("ces", 3, 4)]
)
def test_it_opens_a_followup_for_each_kinds_unhappy_scores_only(kind, unhappy, happy):
    survey = survey_create(name=kind, kind=kind)
    response_record(invitation=InvitationFactory(campaign__survey=survey), score=happy)
    assert not FollowUp.objects.exists()

    response = response_record(
        invitation=InvitationFactory(campaign__survey=survey), score=unhappy
    )

    assert FollowUp.objects.get().response == response


def test_it_notes_a_comment_added_after_the_score_on_the_followup(invitation):
    response_record(invitation=invitation, score=1)

    response_record(invitation=invitation, comment="The courier never came.")

    followup = FollowUp.objects.get()
    added = followup.events.get(kind=EventKind.COMMENTED)
    assert added.description() == "The courier never came."
    assert not followup.events.filter(kind=EventKind.ANSWER_CHANGED).exists()


@pytest.mark.django_db(transaction=True)
def test_it_says_the_survey_changed_when_a_question_went_away_meanwhile():
    """Staff removed a question while the customer's page was open: a clear error,
    nothing half-saved, never a 500."""
    from surveys.selectors import invitation_open, survey_questions
    from surveys.services import survey_update

    survey = survey_create(
        name="S", kind="nps", questions=[{"type": "short_text", "text_en": "Role?"}]
    )
    invitation = InvitationFactory(campaign__survey=survey)
    # The page, drawn with its questions.
    opened = invitation_open(token=invitation.token)
    survey_questions(opened.campaign.survey)
    extra = survey.questions.get(role="")
    survey_update(
        survey=survey, questions=[{"id": q.pk} for q in survey.questions.all()][:2]
    )

    with pytest.raises(ValidationError) as e:
        response_record(
            invitation=opened, answers={"score": 4, extra.field_name: "Buyer"}
        )

    assert "This survey changed while you were answering." in e.value.messages[0]
    assert not Response.objects.exists()
    invitation.refresh_from_db()
    assert invitation.status != InvitationStatus.ANSWERED


def test_it_never_empties_a_response():
    custom = survey_create(
        name="C", kind="custom", questions=[{"type": "long_text", "text_en": "Hi?"}]
    )
    invitation = InvitationFactory(campaign__survey=custom)
    field = custom.questions.get().field_name
    response_record(invitation=invitation, answers={field: "Hello"})

    with pytest.raises(ValidationError) as e:
        response_record(invitation=invitation, answers={field: ""})

    assert e.value.messages == ["Please answer at least one question."]
    assert Response.objects.get().answers.get().text == "Hello"


def test_it_notes_nothing_when_the_comment_is_cleared(invitation):
    response_record(invitation=invitation, score=1, comment="slow")

    response_record(invitation=invitation, comment="")

    followup = FollowUp.objects.get()
    assert not followup.events.filter(kind=EventKind.COMMENTED).exists()
    assert Response.objects.get().comment == ""
