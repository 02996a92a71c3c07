"""Survey kinds, questions and templates, through the survey services."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from surveys.models import QuestionRole, QuestionType
from surveys.services import (
    SURVEY_TEMPLATES,
    response_record,
    survey_copy,
    survey_create,
    survey_from_template,
    survey_update,
)
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db

FAST = {"value": "fast", "en": "Fast delivery", "ko": "빠른 배송"}
PRICE = {"value": "price", "en": "Fair price", "ko": "합리적인 가격"}


def specs(survey) -> list[dict]:
    """The survey's questions as survey_update takes them back."""
    return [{"id": q.pk} for q in survey.questions.all()]


@pytest.mark.parametrize(
    "kind, scale, english, korean",
    [
        (
            "nps",
            (0, 10),
            "How likely are you to recommend Acme to a friend or colleague?",
            "친구나 동료에게 Acme 서비스를 추천하실 가능성은 얼마나 되십니까?",
        ),
        (
            "csat",
            (1, 5),
            "How satisfied were you with your experience with Acme?",
            "Acme 서비스 이용 경험에 얼마나 만족하셨습니까?",
        ),
        (
            "ces",
            (1, 7),
            "How much do you agree with this statement: “Acme made it easy for me "
            "to handle my issue.”",
            "다음 문장에 얼마나 동의하십니까? “Acme에서 제 문제를 쉽게 해결할 수 "
            "있었다.”",
        ),
    ],
)
def test_it_gives_each_standard_kind_its_scale_and_wording(
    settings, kind, scale, english, korean
):
    settings.COMPANY_NAME = "Acme"
    survey = survey_create(name="S", kind=kind)

    headline, reason = survey.questions.all()
    assert (headline.role, headline.type, headline.scale) == (
        "headline",
        "score",
        scale,
    )
    assert headline.display_text("en") == english
    assert headline.display_text("ko") == korean
    assert reason.display_text("en") == "What is the main reason for your score?"
    assert reason.display_text("ko") == "그렇게 평가하신 가장 큰 이유는 무엇인가요?"


def test_it_gives_a_custom_survey_only_the_questions_it_was_given():
    survey = survey_create(
        name="Onboarding",
        kind="custom",
        questions=[
            {"type": "score", "text_en": "Rate setup", "scale_low": 1, "scale_high": 4},
            {
                "type": "multiple_choice",
                "text_en": "What mattered?",
                "choices": [FAST, PRICE],
            },
            {"type": "short_text", "text_en": "Your role?", "required": True},
        ],
    )

    questions = list(survey.questions.all())
    assert [q.type for q in questions] == ["score", "multiple_choice", "short_text"]
    assert [q.position for q in questions] == [1, 2, 3]
    assert [q.role for q in questions] == ["", "", ""]
    assert questions[0].scale == (1, 4)
    assert questions[2].required is True


def test_it_refuses_a_custom_survey_without_questions():
    with pytest.raises(ValidationError) as e:
        survey_create(name="Empty", kind="custom")
    assert e.value.message_dict == {"questions": ["Ask at least one question."]}


def test_it_adds_extra_questions_after_the_standard_ones():
    survey = survey_create(
        name="NPS+",
        kind="nps",
        questions=[
            {"type": "single_choice", "text_en": "Plan?", "choices": [FAST, PRICE]}
        ],
    )
    assert [q.role for q in survey.questions.all()] == ["headline", "reason", ""]


@pytest.mark.parametrize(
    "question, field",
    [
        ({"type": "long_text"}, "text_en"),
        ({"type": "single_choice", "text_en": "Q", "choices": [FAST]}, "choices"),
        ({"type": "single_choice", "text_en": "Q", "choices": [FAST, FAST]}, "choices"),
        (
            {
                "type": "single_choice",
                "text_en": "Q",
                "choices": [{"value": "A b"}, FAST],
            },
            "choices",
        ),
        ({"type": "short_text", "text_en": "Q", "choices": [FAST, PRICE]}, "choices"),
        ({"type": "score", "text_en": "Q"}, "scale_low"),
        (
            {"type": "score", "text_en": "Q", "scale_low": 3, "scale_high": 3},
            "scale_high",
        ),
        (
            {"type": "score", "text_en": "Q", "scale_low": 0, "scale_high": 11},
            "scale_high",
        ),
        ({"type": "long_text", "text_en": "Q", "scale_low": 1}, "scale_low"),
        ({"type": "essay", "text_en": "Q"}, "type"),
        ({"type": "long_text", "text_en": "x" * 501}, "text_en"),
        ({"type": "long_text", "text_en": "a\x00b"}, "text_en"),
        ({"type": "long_text", "text_en": "Q", "required": "yes"}, "required"),
        ({"type": "long_text", "text_en": "Q", "colour": "red"}, "colour"),
        ({"role": "headline", "type": "long_text"}, "type"),
    ],
    ids=repr,
)
def test_it_names_the_field_of_a_bad_question_and_saves_nothing(question, field):
    from surveys.models import Survey

    with pytest.raises(ValidationError) as e:
        survey_create(name="S", kind="nps", questions=[question])

    assert [list(p) for p in e.value.per_question if p] == [[field]]
    assert not Survey.objects.exists()


def test_it_rewords_a_standard_question_per_language_and_keeps_korean_standard():
    survey = survey_create(name="S", kind="nps")
    headline = survey.questions.get(role="headline")

    survey_update(
        survey=survey,
        questions=[{"id": headline.pk, "text_en": "Would you recommend {company}?"}]
        + specs(survey)[1:],
    )

    headline.refresh_from_db()
    with translation.override("en"):
        assert headline.display_text() == "Would you recommend cxm?"
    with translation.override("ko"):
        # A Korean customer never sees the English rewording.
        assert "추천" in headline.display_text()
        assert "Would you" not in headline.display_text()
    survey_update(
        survey=survey,
        questions=[{"id": headline.pk, "text_ko": "{company}, 추천하시겠어요?"}]
        + specs(survey)[1:],
    )
    headline.refresh_from_db()
    assert headline.display_text("ko") == "cxm, 추천하시겠어요?"


def test_it_reorders_adds_and_removes_unanswered_questions():
    survey = survey_create(
        name="S",
        kind="nps",
        questions=[{"type": "short_text", "text_en": "Role?"}],
    )
    headline, reason, role = survey.questions.all()

    survey_update(
        survey=survey,
        questions=[
            {"id": headline.pk},
            {"id": role.pk},
            {"type": "long_text", "text_en": "Anything else?"},
        ],
    )

    questions = list(survey.questions.all())
    assert [q.pk for q in questions[:2]] == [headline.pk, role.pk]
    assert questions[2].text_en == "Anything else?"
    assert [q.position for q in questions] == [1, 2, 3]
    assert not survey.questions.filter(pk=reason.pk).exists()


def test_it_keeps_the_score_question_of_a_standard_kind():
    survey = survey_create(name="S", kind="csat")
    reason = survey.questions.get(role="reason")

    with pytest.raises(ValidationError) as e:
        survey_update(survey=survey, questions=[{"id": reason.pk}])

    assert "is the survey's score and stays" in e.value.messages[0]
    assert survey.questions.count() == 2


def answered_survey():
    survey = survey_create(
        name="S",
        kind="nps",
        questions=[
            {"type": "single_choice", "text_en": "Why?", "choices": [FAST, PRICE]}
        ],
    )
    choice = survey.questions.get(role="")
    invitation = InvitationFactory(campaign__survey=survey)
    response_record(
        invitation=invitation, answers={"score": 9, choice.field_name: "fast"}
    )
    return survey, choice


def test_it_refuses_to_remove_a_question_with_answers_and_says_to_copy():
    survey, choice = answered_survey()

    with pytest.raises(ValidationError) as e:
        survey_update(survey=survey, questions=specs(survey)[:2])

    message = e.value.messages[0]
    assert message.startswith("Question 3 (Why?) has answers and cannot be removed.")
    assert "Copy the survey" in message
    assert survey.questions.count() == 3


@pytest.mark.parametrize(
    "change, field",
    [
        ({"type": "multiple_choice"}, "type"),
        ({"choices": [PRICE, {"value": "other", "en": "Other"}]}, "choices"),
    ],
)
def test_it_refuses_to_retype_an_answered_question_or_take_a_choice_away(change, field):
    survey, choice = answered_survey()
    questions = specs(survey)
    questions[2].update(change)

    with pytest.raises(ValidationError) as e:
        survey_update(survey=survey, questions=questions)

    assert list(e.value.per_question[2]) == [field]
    assert "copy the survey" in str(e.value.per_question[2][field]).lower()
    choice.refresh_from_db()
    assert (choice.type, len(choice.choices)) == ("single_choice", 2)


def test_it_lets_an_answered_question_be_reworded_and_gain_a_choice():
    survey, choice = answered_survey()
    questions = specs(survey)
    questions[2].update(
        text_en="What mattered most?",
        text_ko="무엇이 가장 중요했나요?",
        choices=[
            {**FAST, "en": "Quick delivery"},
            PRICE,
            {"value": "support", "en": "Support", "ko": "지원"},
        ],
    )

    survey_update(survey=survey, questions=questions)

    choice.refresh_from_db()
    assert choice.text_en == "What mattered most?"
    assert [c["value"] for c in choice.choices] == ["fast", "price", "support"]
    assert choice.choice_labels("en")[0] == ("fast", "Quick delivery")
    assert choice.choice_labels("ko")[0] == ("fast", "빠른 배송")


def test_it_copies_a_survey_with_its_questions_and_no_answers():
    survey, _choice = answered_survey()

    copy = survey_copy(survey=survey)

    assert copy.pk != survey.pk
    assert copy.name == f"Copy of {survey.name}"
    assert copy.kind == survey.kind
    original = [(q.type, q.role, q.text_en, q.choices) for q in survey.questions.all()]
    copied = [(q.type, q.role, q.text_en, q.choices) for q in copy.questions.all()]
    assert copied == original
    assert not copy.responses.exists()


@pytest.mark.parametrize("template", list(SURVEY_TEMPLATES))
def test_it_starts_a_survey_from_each_template_with_a_why_question(template):
    survey = survey_from_template(template=template)

    name, kind, _en, _ko = SURVEY_TEMPLATES[template]
    assert (survey.name, survey.kind) == (str(name), kind)
    assert [q.role for q in survey.questions.all()] == [
        QuestionRole.HEADLINE,
        QuestionRole.REASON,
    ]
    headline = survey.questions.get(role="headline")
    assert headline.type == QuestionType.SCORE
    assert "{company}" not in headline.display_text("ko")


def test_it_words_the_csat_template_for_a_purchase_in_both_languages():
    survey = survey_from_template(template="post_purchase_csat", name="After checkout")

    headline = survey.questions.get(role="headline")
    assert survey.name == "After checkout"
    assert "purchase" in headline.display_text("en")
    assert "구매" in headline.display_text("ko")


def test_it_refuses_an_unknown_template():
    with pytest.raises(ValidationError) as e:
        survey_from_template(template="nope")
    assert "template" in e.value.message_dict


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, None])
def test_it_refuses_a_survey_name_that_is_empty_or_too_long(name):
    with pytest.raises(ValidationError) as e:
        survey_create(name=name, kind="nps")
    assert list(e.value.message_dict) == ["name"]
    survey = survey_create(name="Kept", kind="nps")
    with pytest.raises(ValidationError):
        survey_update(survey=survey, name=name or "")
    survey.refresh_from_db()
    assert survey.name == "Kept"


def test_it_keeps_the_score_first_and_its_why_second_whatever_the_order_sent():
    survey = survey_create(
        name="S", kind="nps", questions=[{"type": "short_text", "text_en": "Role?"}]
    )
    headline, reason, role = survey.questions.all()

    survey_update(
        survey=survey,
        questions=[{"id": role.pk}, {"id": reason.pk}, {"id": headline.pk}],
    )

    assert [q.pk for q in survey.questions.all()] == [headline.pk, reason.pk, role.pk]


def test_it_drops_what_an_unanswered_question_no_longer_needs_when_retyped():
    survey = survey_create(
        name="S",
        kind="custom",
        questions=[{"type": "single_choice", "text_en": "Q", "choices": [FAST, PRICE]}],
    )
    question = survey.questions.get()

    survey_update(survey=survey, questions=[{"id": question.pk, "type": "short_text"}])

    question.refresh_from_db()
    assert (question.type, question.choices) == ("short_text", [])


def test_it_says_a_question_is_in_the_list_twice():
    survey = survey_create(name="S", kind="nps")
    headline, reason = survey.questions.all()

    with pytest.raises(ValidationError) as e:
        survey_update(
            survey=survey,
            questions=[{"id": headline.pk}, {"id": reason.pk}, {"id": reason.pk}],
        )

    assert e.value.per_question[2] == {"id": ["This question is in the list twice."]}
