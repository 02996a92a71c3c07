from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django import forms
from django.utils import timezone

from cxm.customers.models import Customer, Segment
from cxm.customers.services import segment_create
from journeys.models import Journey
from surveys.kinds import KINDS
from surveys.models import Answer, Campaign, CampaignStatus, Response, Survey
from surveys.services import (
    campaign_send,
    invitations_deliver,
    response_record,
    survey_create,
)
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
    UserFactory,
    agent,
    property_segment,
)

pytestmark = pytest.mark.django_db


# What the campaign form posts for its rules, as drawn (the defaults).
RULES = {"reminders": 0, "reminder_interval_days": 3}


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_it_sends_campaigns_from_the_admin_action(
    admin_client, django_capture_on_commit_callbacks
):
    CustomerFactory.create_batch(3)
    campaign = CampaignFactory()
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            "/admin/surveys/campaign/",
            {"action": "send", "_selected_action": [campaign.pk]},
            follow=True,
        )
    assert "3 invitations queued" in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT  # eager Celery delivered all three
    assert campaign.invitations.filter(status="sent").count() == 3

    r = admin_client.post(
        "/admin/surveys/campaign/",
        {"action": "send", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "already sent" in r.content.decode()
    assert campaign.invitations.count() == 3


# The survey builder


def builder_data(response) -> dict:
    """The survey form of an admin page, as a browser would send it unchanged."""
    form = response.context["adminform"].form
    formset = response.context["inline_admin_formsets"][0].formset
    data = {}
    for bound in [*form, *formset.management_form, *(f for q in formset for f in q)]:
        if bound.field.disabled:
            continue  # a browser sends no disabled input
        value = bound.value()
        if isinstance(bound.field.widget, forms.CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        else:
            data[bound.html_name] = "" if value is None else value
    return data


def change_page(admin_client, survey):
    r = admin_client.get(f"/admin/surveys/survey/{survey.pk}/change/")
    assert r.status_code == 200
    return r


def post_change(admin_client, survey, data):
    return admin_client.post(f"/admin/surveys/survey/{survey.pk}/change/", data)


def new_questions(*questions, start: int = 0) -> dict:
    """Form fields of new questions in the builder, from index `start` on."""
    data = {}
    for index, fields in enumerate(questions, start=start):
        for name, value in fields.items():
            data[f"questions-{index}-{name}"] = value
    return data


def add_survey(admin_client, *, name, kind, questions=()):
    return admin_client.post(
        "/admin/surveys/survey/add/",
        {
            "name": name,
            "kind": kind,
            "questions-TOTAL_FORMS": str(len(questions)),
            "questions-INITIAL_FORMS": "0",
            **new_questions(*questions),
        },
    )


def inline_forms(response):
    return response.context["inline_admin_formsets"][0].formset.forms


def non_form_errors(response):
    return list(response.context["inline_admin_formsets"][0].formset.non_form_errors())


def answered_survey(*, extra=(), answers=None, score=9, comment="Fast"):
    """An NPS survey with `extra` questions and one response to all of them."""
    survey = survey_create(name="Relationship", kind="nps", questions=list(extra))
    invitation = InvitationFactory(campaign=CampaignFactory(survey=survey))
    response_record(
        invitation=invitation, score=score, comment=comment, answers=answers
    )
    return survey


CHOICES = [
    {"value": "fast", "en": "Fast delivery", "ko": "빠른 배송"},
    {"value": "price", "en": "Good price", "ko": "좋은 가격"},
]


@pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
def test_it_gives_a_survey_added_in_the_admin_its_standard_questions(
    admin_client, kind
):
    r = add_survey(admin_client, name="Spring", kind=kind)

    assert r.status_code == 302
    survey = Survey.objects.get(name="Spring")
    assert [(q.type, q.role) for q in survey.questions.all()] == [
        ("score", "headline"),
        ("long_text", "reason"),
    ]
    assert survey.questions.get(role="headline").scale == (
        KINDS[kind].low,
        KINDS[kind].high,
    )


def test_it_builds_a_survey_with_every_question_type_in_the_admin(admin_client):
    r = add_survey(
        admin_client,
        name="Onboarding",
        kind="custom",
        questions=[
            {
                "type": "score",
                "text_en": "How easy was signing up?",
                "text_ko": "가입은 얼마나 쉬웠습니까?",
                "scale_low": "1",
                "scale_high": "5",
                "label_low_en": "Hard",
                "label_high_en": "Easy",
                "label_low_ko": "어려움",
                "label_high_ko": "쉬움",
                "required": "on",
            },
            {
                "type": "single_choice",
                "text_en": "What brought you here?",
                "choices": "ad | An advert | 광고\n| Friend | 친구",
            },
            {
                "type": "multiple_choice",
                "text_en": "Which do you use?",
                "choices": "Mobile app\nweb | Website | 웹사이트",
            },
            {"type": "short_text", "text_en": "Your job title?"},
            {"type": "long_text", "text_en": "Anything else?", "text_ko": "더 있나요?"},
        ],
    )

    assert r.status_code == 302
    survey = Survey.objects.get(name="Onboarding")
    assert survey.kind == "custom"
    score, single, multiple, short, long = survey.questions.all()
    assert [q.position for q in survey.questions.all()] == [1, 2, 3, 4, 5]
    assert (score.type, score.role, score.scale, score.required) == (
        "score",
        "",
        (1, 5),
        True,
    )
    assert score.scale_labels("ko") == ("어려움", "쉬움")
    assert score.display_text("ko") == "가입은 얼마나 쉬웠습니까?"
    assert single.type == "single_choice" and not single.required
    assert single.choices == [
        {"value": "ad", "en": "An advert", "ko": "광고"},
        {"value": "friend", "en": "Friend", "ko": "친구"},
    ]
    assert multiple.choices == [
        {"value": "mobile-app", "en": "Mobile app", "ko": ""},
        {"value": "web", "en": "Website", "ko": "웹사이트"},
    ]
    assert (short.type, short.text_en) == ("short_text", "Your job title?")
    assert (long.type, long.display_text("ko")) == ("long_text", "더 있나요?")


def test_it_adds_extra_questions_after_the_standard_ones(admin_client):
    r = add_survey(
        admin_client,
        name="Support",
        kind="ces",
        questions=[{"type": "short_text", "text_en": "Who helped you?"}],
    )

    assert r.status_code == 302
    survey = Survey.objects.get(name="Support")
    assert [(q.position, q.role, q.type) for q in survey.questions.all()] == [
        (1, "headline", "score"),
        (2, "reason", "long_text"),
        (3, "", "short_text"),
    ]


def test_it_puts_the_services_refusal_on_the_new_question_it_is_about(admin_client):
    r = add_survey(
        admin_client,
        name="Onboarding",
        kind="custom",
        questions=[
            {"type": "short_text", "text_en": "Your name?"},
            {"type": "score", "text_en": "How easy?"},
            {"type": "short_text", "text_en": "Why?", "scale_low": "1"},
        ],
    )

    assert r.status_code == 200
    first, second, third = inline_forms(r)
    assert not first.errors
    assert second.errors["scale_low"] == ["Give the lowest and the highest score."]
    assert third.errors["scale_low"] == ["Only a score question has a scale."]
    assert not Survey.objects.exists()


def test_it_asks_a_custom_survey_for_at_least_one_question(admin_client):
    r = add_survey(admin_client, name="Empty", kind="custom")

    assert r.status_code == 200
    assert non_form_errors(r) == ["Ask at least one question."]
    assert not Survey.objects.exists()


def test_it_lets_staff_reword_an_answered_question_in_each_language(admin_client):
    survey = answered_survey()
    data = builder_data(change_page(admin_client, survey))
    data["name"] = "Relationship 2026"
    data["questions-0-text_en"] = "Would you recommend {company} to a friend?"
    data["questions-1-text_ko"] = "그렇게 답하신 이유는 무엇입니까?"

    r = post_change(admin_client, survey, data)

    assert r.status_code == 302
    survey.refresh_from_db()
    assert survey.name == "Relationship 2026"
    score, reason = survey.questions.all()
    assert score.text_en == "Would you recommend {company} to a friend?"
    assert reason.text_ko == "그렇게 답하신 이유는 무엇입니까?"


def test_it_refuses_to_retype_an_answered_question(admin_client):
    survey = answered_survey(
        extra=[{"type": "single_choice", "text_en": "Why us?", "choices": CHOICES}]
    )
    extra = survey.questions.get(role="")
    response_record(
        invitation=Response.objects.get().invitation, answers={extra.field_name: "fast"}
    )
    data = builder_data(change_page(admin_client, survey))
    data["questions-2-type"] = "short_text"
    data["questions-2-choices"] = ""

    r = post_change(admin_client, survey, data)

    assert r.status_code == 200
    errors = inline_forms(r)[2].errors["type"]
    assert errors == [
        "This question has answers: its type stays. Copy the survey to ask "
        "something else; wording can still change."
    ]
    assert "copy the survey" in r.content.decode().lower()
    extra.refresh_from_db()
    assert extra.type == "single_choice"


def test_it_refuses_to_take_an_answered_choice_away(admin_client):
    survey = answered_survey(
        extra=[{"type": "multiple_choice", "text_en": "Why us?", "choices": CHOICES}]
    )
    extra = survey.questions.get(role="")
    response_record(
        invitation=Response.objects.get().invitation,
        answers={extra.field_name: ["price"]},
    )
    data = builder_data(change_page(admin_client, survey))
    data["questions-2-choices"] = "fast | Fast delivery | 빠른 배송\n| Other | 기타"

    r = post_change(admin_client, survey, data)

    assert r.status_code == 200
    assert inline_forms(r)[2].errors["choices"] == [
        "This question has answers: the choice 'price' stays. Copy the survey to "
        "ask something else; wording can still change."
    ]
    extra.refresh_from_db()
    assert extra.choices == CHOICES


@pytest.mark.parametrize(
    "delete, message",
    [
        (
            2,
            "Question 3 (Who helped you?) has answers and cannot be removed. Copy "
            "the survey to ask something else; wording can still change.",
        ),
        (
            0,
            "Question 1 (How likely are you to recommend cxm to a friend or "
            "colleague?) is the survey's score and stays.",
        ),
    ],
    ids=["answered", "the score"],
)
def test_it_refuses_to_delete_an_answered_question(admin_client, delete, message):
    survey = answered_survey(
        extra=[{"type": "short_text", "text_en": "Who helped you?"}],
    )
    extra = survey.questions.get(role="")
    response_record(
        invitation=Response.objects.get().invitation, answers={extra.field_name: "Kim"}
    )
    data = builder_data(change_page(admin_client, survey))
    data[f"questions-{delete}-DELETE"] = "on"

    r = post_change(admin_client, survey, data)

    assert r.status_code == 200
    assert non_form_errors(r) == [message]
    assert message in r.content.decode().replace("&#x27;", "'")
    assert survey.questions.count() == 3


def test_it_deletes_a_question_nobody_answered(admin_client):
    survey = answered_survey(
        extra=[{"type": "short_text", "text_en": "Who helped you?"}]
    )
    data = builder_data(change_page(admin_client, survey))
    data["questions-2-DELETE"] = "on"

    r = post_change(admin_client, survey, data)

    assert r.status_code == 302
    assert [q.role for q in survey.questions.all()] == ["headline", "reason"]


def test_it_reorders_questions_by_their_position(admin_client):
    survey = survey_create(
        name="Onboarding",
        kind="custom",
        questions=[
            {"type": "short_text", "text_en": "First?"},
            {"type": "short_text", "text_en": "Second?"},
            {"type": "short_text", "text_en": "Third?"},
        ],
    )
    data = builder_data(change_page(admin_client, survey))
    data["questions-0-position"] = "3"
    data["questions-2-position"] = "1"
    data["questions-TOTAL_FORMS"] = "4"
    data.update(new_questions({"type": "long_text", "text_en": "Fourth?"}, start=3))

    r = post_change(admin_client, survey, data)

    assert r.status_code == 302
    assert [(q.position, q.text_en) for q in survey.questions.all()] == [
        (1, "Third?"),
        (2, "Second?"),
        (3, "First?"),
        (4, "Fourth?"),
    ]


def test_it_shows_choices_one_a_line_and_reads_them_back(admin_client):
    survey = answered_survey(
        extra=[{"type": "single_choice", "text_en": "Why us?", "choices": CHOICES}]
    )
    r = change_page(admin_client, survey)
    assert (
        ">\nfast | Fast delivery | 빠른 배송\nprice | Good price | 좋은 가격</textarea>"
        in r.content.decode()
    )
    data = builder_data(r)
    data["questions-2-choices"] += "\n| Support team | 지원팀\nFast!\nhelp | Helpful"

    r = post_change(admin_client, survey, data)

    assert r.status_code == 302
    assert survey.questions.get(role="").choices == [
        *CHOICES,
        {"value": "support-team", "en": "Support team", "ko": "지원팀"},
        {"value": "fast-2", "en": "Fast!", "ko": ""},
        {"value": "help", "en": "Helpful", "ko": ""},
    ]


@pytest.mark.parametrize(
    "choices, message",
    [
        (
            "fast | Fast | 빠름 | extra",
            "Line 1: write value | English label | Korean label, with no other “|”.",
        ),
        (
            "a | A\nFast Delivery | Fast | 빠름",
            "Line 2: “Fast Delivery” is not a value: use lower-case letters, "
            "digits, - and _, up to 50.",
        ),
        ("a | A\n\n빠른 배송", "Line 3: no value can be made from “빠른 배송”"),
        ("fast |  | 빠름", "Line 1: give the English label."),
        ("fast | Fast |\nfast | Quick |", "The choice value 'fast' is there twice."),
        ("only | One choice", "Offer at least two choices."),
        ("Fast | Quick", "Line 1: “Fast” is not a value"),
        ("a | Same\nb | same", "Line 2: “same” is there twice."),
        (f"a | {'x' * 201}\nb | B", "The labels of 'a' are longer than 200"),
    ],
    ids=[
        "four parts",
        "bad value",
        "no value to make",
        "no English",
        "twice",
        "one",
        "label where the value goes",
        "same label twice",
        "label too long",
    ],
)
def test_it_puts_a_bad_choice_line_on_the_choices_field(admin_client, choices, message):
    r = add_survey(
        admin_client,
        name="Onboarding",
        kind="custom",
        questions=[{"type": "single_choice", "text_en": "Why?", "choices": choices}],
    )

    assert r.status_code == 200
    (error,) = inline_forms(r)[0].errors["choices"]
    assert error.startswith(message)
    assert not Survey.objects.exists()


def test_it_shows_the_kind_read_only_once_the_survey_exists(admin_client):
    survey = SurveyFactory(name="Relationship")
    assert (
        'name="kind"' in admin_client.get("/admin/surveys/survey/add/").content.decode()
    )
    r = change_page(admin_client, survey)
    assert 'name="kind"' not in r.content.decode()
    assert "NPS (0–10)" in r.content.decode()
    data = builder_data(r)

    r = post_change(admin_client, survey, {**data, "kind": "custom"})

    assert r.status_code == 302
    survey.refresh_from_db()
    assert survey.kind == "nps"


def test_it_keeps_the_standard_questions_type_and_scale_out_of_reach(admin_client):
    survey = SurveyFactory()
    forms_ = inline_forms(change_page(admin_client, survey))
    assert forms_[0].fields["type"].disabled and forms_[0].fields["scale_low"].disabled
    assert forms_[0].fields["required"].disabled
    assert not forms_[0].fields["text_ko"].disabled
    assert (
        forms_[1].fields["type"].disabled and not forms_[1].fields["required"].disabled
    )


def test_it_tells_staff_when_answers_arrive_between_the_check_and_the_save(
    admin_client, monkeypatch
):
    """The formset checked the questions; the service checks again under a lock."""
    survey = answered_survey(
        extra=[{"type": "short_text", "text_en": "Who helped you?"}]
    )
    extra = survey.questions.get(role="")
    response_record(
        invitation=Response.objects.get().invitation, answers={extra.field_name: "Kim"}
    )
    data = builder_data(change_page(admin_client, survey))
    data["questions-2-DELETE"] = "on"
    monkeypatch.setattr("surveys.admin.survey_questions_check", lambda **kwargs: [])

    r = post_change(admin_client, survey, data)

    assert r.status_code == 302
    assert r["Location"] == f"/admin/surveys/survey/{survey.pk}/change/"
    page = admin_client.get(r["Location"]).content.decode()
    assert "has answers and cannot be removed" in page
    assert survey.questions.count() == 3


def test_it_previews_the_answer_page_in_english_and_korean(admin_client):
    survey = survey_create(
        name="Relationship",
        kind="nps",
        questions=[
            {
                "role": "headline",
                "type": "score",
                "text_en": "Would you recommend {company} to a friend?",
            },
            {
                "type": "single_choice",
                "text_en": "Why us?",
                "text_ko": "왜 저희를 선택하셨습니까?",
                "choices": CHOICES,
            },
        ],
    )
    change = change_page(admin_client, survey).content.decode()
    url = f"/admin/surveys/survey/{survey.pk}/preview/"
    assert f'href="{url}?language=en"' in change
    assert f'href="{url}?language=ko"' in change

    english = admin_client.get(f"{url}?language=en")
    korean = admin_client.get(f"{url}?language=ko")

    assert english.status_code == korean.status_code == 200
    for r in english, korean:
        used = {t.name for t in r.templates}
        assert {"surveys/answer.html", "surveys/_question.html"} <= used
    english, korean = english.content.decode(), korean.content.decode()
    assert '<html lang="en">' in english and '<html lang="ko">' in korean
    assert "Would you recommend cxm to a friend?" in english
    assert "Fast delivery" in english and "Why us?" in english
    assert "Would you recommend" not in korean
    assert "친구나 동료에게 cxm 서비스를 추천하실" in korean  # the standard wording
    assert "왜 저희를 선택하셨습니까?" in korean and "빠른 배송" in korean
    assert "Why us?" not in korean and "Fast delivery" not in korean
    for html in english, korean:
        assert 'name="score"' in html and 'name="comment"' in html
        assert f'name="q{survey.questions.get(role="").pk}"' in html
        assert "<form" in html and "action=" not in html.split("<form", 1)[1][:40]


def test_it_records_nothing_sent_from_the_preview(admin_client):
    survey = SurveyFactory()
    url = f"/admin/surveys/survey/{survey.pk}/preview/?language=ko"

    r = admin_client.post(url, {"score": "3", "comment": "Slow"})

    assert r.status_code == 200
    assert "Nothing was recorded: this is a preview." in r.content.decode()
    assert not Response.objects.exists()


def test_it_starts_surveys_from_ready_templates(admin_client):
    changelist = admin_client.get("/admin/surveys/survey/").content.decode()
    assert 'href="/admin/surveys/survey/templates/"' in changelist
    page = admin_client.get("/admin/surveys/survey/templates/")
    assert page.status_code == 200
    html = page.content.decode()
    for title in ["Relationship NPS", "Post-purchase CSAT", "Post-support CES"]:
        assert title in html
    assert "How satisfied were you with your recent purchase from cxm? (1–5)" in html

    created = []
    for template, kind in [
        ("relationship_nps", "nps"),
        ("post_purchase_csat", "csat"),
        ("post_support_ces", "ces"),
    ]:
        r = admin_client.post(
            "/admin/surveys/survey/templates/",
            {"template": template, "name": ""},
        )
        survey = Survey.objects.latest("pk")
        assert r.status_code == 302
        assert r["Location"] == f"/admin/surveys/survey/{survey.pk}/change/"
        assert survey.kind == kind
        assert [q.role for q in survey.questions.all()] == ["headline", "reason"]
        created.append(survey.name)
    assert created == ["Relationship NPS", "Post-purchase CSAT", "Post-support CES"]


def test_it_names_a_survey_started_from_a_template(admin_client):
    r = admin_client.post(
        "/admin/surveys/survey/templates/",
        {"template": "post_support_ces", "name": "Helpdesk CES"},
    )
    assert r.status_code == 302
    assert Survey.objects.get().name == "Helpdesk CES"

    r = admin_client.post(
        "/admin/surveys/survey/templates/",
        {"template": "post_support_ces", "name": "x" * 201},
    )
    assert r.status_code == 200
    assert "Ensure this value has at most 200 characters" in r.content.decode()
    r = admin_client.post("/admin/surveys/survey/templates/", {"template": "nope"})
    assert r.status_code == 200
    assert Survey.objects.count() == 1


def test_it_copies_the_selected_surveys(admin_client):
    survey = answered_survey(
        extra=[{"type": "single_choice", "text_en": "Why us?", "choices": CHOICES}]
    )
    other = SurveyFactory(name="Other", kind="csat")

    r = admin_client.post(
        "/admin/surveys/survey/",
        {"action": "copy", "_selected_action": [survey.pk, other.pk]},
        follow=True,
    )

    assert "2 surveys copied" in r.content.decode()
    copy = Survey.objects.get(name="Copy of Relationship")
    assert copy.kind == "nps"
    fields = ("position", "type", "role", "text_en", "choices")
    assert list(copy.questions.values_list(*fields)) == list(
        survey.questions.values_list(*fields)
    )
    assert not Answer.objects.filter(question__survey=copy).exists()
    assert Survey.objects.get(name="Copy of Other").kind == "csat"


def test_it_lists_surveys_in_constant_queries(admin_client, django_assert_num_queries):
    SurveyFactory()
    with django_assert_num_queries(5) as few:
        admin_client.get("/admin/surveys/survey/")
    SurveyFactory.create_batch(5, kind="csat")
    with django_assert_num_queries(len(few.captured_queries)):
        r = admin_client.get("/admin/surveys/survey/")
    assert r.content.decode().count('class="field-question_count">2</td>') == 6


# Responses


def respond(campaign, score, comment="", **customer):
    invitation = InvitationFactory(
        campaign=campaign, customer=CustomerFactory(**customer)
    )
    return response_record(invitation=invitation, score=score, comment=comment)


def test_it_lists_responses_with_their_kind_score_bucket_and_comment(admin_client):
    agent()
    csat = CampaignFactory(survey=SurveyFactory(kind="csat"), name="After purchase")
    respond(csat, 2, "The parcel came late and " + "very " * 30 + "damaged.")

    r = admin_client.get("/admin/surveys/response/")

    html = r.content.decode()
    assert 'class="field-kind">CSAT (1–5)</td>' in html
    assert 'class="field-score">2</td>' in html
    assert 'class="field-bucket">Dissatisfied</td>' in html
    assert "After purchase" in html
    assert "The parcel came late and very" in html and "damaged." not in html


def test_it_lists_responses_in_constant_queries(
    admin_client, django_assert_num_queries
):
    campaign = CampaignFactory()
    respond(campaign, 9)
    with django_assert_num_queries(6) as few:
        admin_client.get("/admin/surveys/response/")
    for score in [10, 7, 8]:
        respond(campaign, score)
    respond(CampaignFactory(survey=SurveyFactory(kind="ces")), 6)
    with django_assert_num_queries(len(few.captured_queries)):
        r = admin_client.get("/admin/surveys/response/")
    assert len(r.context["cl"].result_list) == 5


def test_it_filters_responses_by_survey_campaign_kind_and_period(admin_client):
    nps_survey = SurveyFactory()
    spring, autumn = (
        CampaignFactory(survey=nps_survey),
        CampaignFactory(survey=nps_survey),
    )
    in_spring, in_autumn = respond(spring, 9), respond(autumn, 10)
    ces = respond(CampaignFactory(survey=SurveyFactory(kind="ces")), 6)
    Response.objects.filter(pk=in_spring.pk).update(
        created_at=timezone.now() - timedelta(days=60)
    )

    def listed(query):
        r = admin_client.get(f"/admin/surveys/response/?{query}")
        assert r.status_code == 200
        return set(r.context["cl"].result_list)

    assert listed(f"survey__id__exact={nps_survey.pk}") == {in_spring, in_autumn}
    assert listed(f"campaign__id__exact={spring.pk}") == {in_spring}
    assert listed("survey__kind__exact=ces") == {ces}
    week_ago = timezone.now() - timedelta(days=7)
    since = urlencode({"created_at__gte": week_ago.isoformat()})
    assert listed(since) == {in_autumn, ces}


def test_it_searches_responses_by_comment_and_customer_email(admin_client):
    campaign = CampaignFactory()
    slow = respond(campaign, 7, "Delivery was slow")
    mina = respond(campaign, 9, "Great", email="mina@example.com")

    def found(q):
        r = admin_client.get(f"/admin/surveys/response/?q={q}")
        return set(r.context["cl"].result_list)

    assert found("slow") == {slow}
    assert found("mina@") == {mina}


def test_it_shows_every_answer_and_the_earlier_versions_of_a_response(admin_client):
    agent()
    survey = survey_create(
        name="Relationship",
        kind="nps",
        questions=[
            {"type": "multiple_choice", "text_en": "Why us?", "choices": CHOICES}
        ],
    )
    extra = survey.questions.get(role="")
    invitation = InvitationFactory(campaign=CampaignFactory(survey=survey))
    response_record(invitation=invitation, score=3, comment="Too slow")
    response = response_record(
        invitation=invitation,
        score=8,
        comment="Better now",
        answers={extra.field_name: ["fast", "price"]},
    )

    r = admin_client.get(f"/admin/surveys/response/{response.pk}/change/")

    assert r.status_code == 200
    html = r.content.decode()
    answers = html.split("answers_list", 1)[1].split("revisions_list", 1)[0]
    assert (
        '<th scope="row">How likely are you to recommend cxm to a friend or '
        "colleague?</th><td>8</td>"
    ) in answers
    assert "<td>Better now</td>" in answers
    assert '<th scope="row">Why us?</th><td>Fast delivery, Good price</td>' in answers
    earlier = html.split("revisions_list", 1)[1]
    assert (
        "<li>How likely are you to recommend cxm to a friend or colleague?: 3</li>"
        "<li>What is the main reason for your score?: Too slow</li>"
    ) in earlier
    assert "Better now" not in earlier


# Campaigns

CUSTOM = [{"type": "short_text", "text_en": "Anything to add?"}]


def campaign_answered(kind, scores):
    campaign = CampaignFactory(survey=SurveyFactory(kind=kind), name=f"{kind} run")
    for score in scores:
        respond(campaign, score)
    return campaign


HEADLINES = [
    ("nps", [10, 9, 7, 3], "NPS 25.0 ± 81.3 from 4 responses"),
    ("csat", [5, 4, 2, 1], "CSAT 50.0 % ± 49.0 from 4 responses"),
    ("ces", [7, 5, 1], "CES 4.33 ± 3.46 from 3 responses"),
]


def test_it_shows_each_kinds_headline_metric_in_the_campaign_list(admin_client):
    agent()
    for kind, scores, _headline in HEADLINES:
        campaign_answered(kind, scores)
    CampaignFactory(survey=SurveyFactory(kind="custom", questions=CUSTOM), name="c")

    html = admin_client.get("/admin/surveys/campaign/").content.decode()

    for _kind, _scores, headline in HEADLINES:
        assert f'class="field-metric">{headline}</td>' in html
    assert 'class="field-metric">-</td>' in html  # the custom survey's
    assert 'class="field-responded">4</td>' in html


@pytest.mark.parametrize(
    "kind, scores, headline, breakdown",
    [
        (
            *HEADLINES[0],
            ["Detractor (0–6): 1", "Passive (7–8): 1", "Promoter (9–10): 2"],
        ),
        (
            *HEADLINES[1],
            ["Dissatisfied (1–2): 2", "Neutral (3): 0", "Satisfied (4–5): 2"],
        ),
        (*HEADLINES[2], ["Hard (1–3): 1", "Neutral (4): 0", "Easy (5–7): 2"]),
    ],
    ids=["nps", "csat", "ces"],
)
def test_it_shows_the_full_metric_on_the_campaign(
    admin_client, kind, scores, headline, breakdown
):
    agent()
    campaign = campaign_answered(kind, scores)

    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    summary = html.decode().split("field-metric_summary", 1)[1]

    assert f"<p>{headline}</p>" in summary
    assert "".join(f"<li>{line}</li>" for line in breakdown) in summary


def test_it_says_a_campaign_without_answers_has_no_metric_yet(admin_client):
    campaign = CampaignFactory()
    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    assert "No responses yet." in html.decode()


def test_it_lists_campaigns_in_constant_queries(
    admin_client, django_assert_num_queries
):
    agent()
    CampaignFactory()
    with django_assert_num_queries(6) as few:
        admin_client.get("/admin/surveys/campaign/")
    for kind, scores, _headline in HEADLINES:
        campaign_answered(kind, scores)
    CampaignFactory.create_batch(2)
    with django_assert_num_queries(len(few.captured_queries)):
        r = admin_client.get("/admin/surveys/campaign/")
    html = r.content.decode()
    assert html.count('class="field-metric"') == Campaign.objects.count() == 6


def test_it_finds_customers_by_email_in_the_admin(admin_client):
    CustomerFactory(email="mina@example.com")
    CustomerFactory(email="joon@example.com")
    html = admin_client.get("/admin/customers/customer/?q=mina").content.decode()
    assert "mina@example.com" in html and "joon@example.com" not in html


def test_it_filters_customers_by_contact_state_and_locale(admin_client):
    from cxm.customers.services import customer_mark_bounced, customer_unsubscribe

    reachable = CustomerFactory(locale="ko")
    gone = CustomerFactory(locale="en")
    customer_unsubscribe(customer=gone)
    bounced = CustomerFactory(locale="ko")
    customer_mark_bounced(customer_id=bounced.pk)

    def listed(query):
        r = admin_client.get(f"/admin/customers/customer/?{query}")
        return set(r.context["cl"].result_list)

    assert listed("contactable=yes") == {reachable}
    assert listed("contactable=unsubscribed") == {gone}
    assert listed("contactable=bounced") == {bounced}
    assert listed("locale__exact=ko") == {reachable, bounced}


def test_it_builds_a_journey_with_ordered_stages_in_the_admin(admin_client):
    r = admin_client.post(
        "/admin/journeys/journey/add/",
        {
            "name": "Online shopper",
            "description": "",
            "stages-TOTAL_FORMS": "2",
            "stages-INITIAL_FORMS": "0",
            "stages-0-name": "Purchase",
            "stages-0-position": "3",
            "stages-1-name": "Awareness",
            "stages-1-position": "1",
        },
    )
    assert r.status_code == 302
    journey = Journey.objects.get()
    assert [s.name for s in journey.stages.all()] == ["Awareness", "Purchase"]


def test_it_assigns_through_the_service_when_the_owner_changes_in_the_admin(
    admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    from cxm.followups.models import EventKind
    from tests.factories import agent

    first, second = agent(), agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    assert followup.owner == first
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            f"/admin/followups/followup/{followup.pk}/change/",
            {
                "response": followup.response_id,
                "owner": second.pk,
                "priority": "high",
                "events-TOTAL_FORMS": "0",
                "events-INITIAL_FORMS": "0",
            },
        )
    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.owner == second
    assert (
        followup.events.filter(kind=EventKind.ASSIGNED).last().text == second.username
    )
    # The new owner, and the previous one.
    assert sorted(m.to[0] for m in mailoutbox) == sorted([second.email, first.email])


def test_it_freezes_the_segment_of_a_sent_campaign(admin_client):
    campaign = CampaignFactory()
    campaign_send(campaign=campaign)
    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    assert 'name="segment"' not in html.decode()


def test_it_passes_djangos_system_checks():
    """manage.py check runs before migrate and runserver: an error stops make run."""
    from django.core.management import call_command

    call_command("check", fail_level="WARNING")


def test_it_lists_follow_ups_with_their_score(admin_client):
    followup = response_record(invitation=InvitationFactory(), score=2).followup
    r = admin_client.get("/admin/followups/followup/")
    assert r.status_code == 200
    row = r.context["cl"].result_list
    assert list(row) == [followup]
    assert 'class="field-score">2</td>' in r.content.decode()


def segment_form(conditions, **fields):
    return {
        "name": "Pro",
        "description": "",
        "match": "all",
        "conditions": conditions,
        **fields,
    }


def test_it_saves_a_segment_from_the_admin_and_counts_its_customers(admin_client):
    CustomerFactory(properties={"plan": "pro"})
    CustomerFactory(properties={"plan": "free"})
    r = admin_client.post(
        "/admin/customers/segment/add/",
        segment_form(
            '[{"type": "property", "name": "plan", "op": "equals", "value": "pro"}]'
        ),
    )
    assert r.status_code == 302, r.content.decode()
    segment = Segment.objects.get()
    assert segment.conditions[0]["value"] == "pro"

    page = admin_client.get(f"/admin/customers/segment/{segment.pk}/change/")
    assert "1, of whom 1 may be emailed" in page.content.decode()


def test_it_names_a_bad_condition_in_the_segment_form(admin_client):
    r = admin_client.post(
        "/admin/customers/segment/add/",
        segment_form(
            '[{"type": "property", "name": "plan", "op": "bigger", "value": 1}]'
        ),
    )
    assert r.status_code == 200
    assert "Condition 1: op must be one of" in str(
        r.context["adminform"].form.errors["conditions"]
    )
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    "conditions, message",
    [
        (
            '[{"type": "property", "name": "spend", "op": "gte", "value": Infinity}]',
            "Numbers must be finite.",
        ),
        (
            '[{"type": "field", "field": "name", "op": "contains", '
            '"value": "a\\u0000"}]',
            "Text must not contain NUL",
        ),
        ('{"plan": "pro"}', "Expected a list"),
    ],
    ids=["infinity", "NUL", "not a list"],
)
def test_it_refuses_segment_conditions_the_database_cannot_store(
    admin_client, conditions, message
):
    r = admin_client.post("/admin/customers/segment/add/", segment_form(conditions))
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["conditions"])
    assert not Segment.objects.exists()


def followup_change(admin_client, followup, **fields):
    data = {
        "owner": followup.owner_id or "",
        "priority": followup.priority,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        **fields,
    }
    return admin_client.post(f"/admin/followups/followup/{followup.pk}/change/", data)


def test_it_opens_follow_ups_only_from_responses(admin_client):
    assert admin_client.get("/admin/followups/followup/add/").status_code == 403
    html = admin_client.get("/admin/followups/followup/").content.decode()
    assert "/admin/followups/followup/add/" not in html


@pytest.mark.parametrize(
    "make_owner, message",
    [
        (lambda: agent(is_active=False), "Select a valid choice"),
        (lambda: UserFactory(), "Select a valid choice"),
    ],
    ids=["inactive agent", "not CX staff"],
)
def test_it_offers_only_active_cx_staff_as_owners(admin_client, make_owner, message):
    first = agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    owner = make_owner()

    r = followup_change(admin_client, followup, owner=owner.pk)

    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["owner"])
    followup.refresh_from_db()
    assert followup.owner == first


def test_it_records_a_priority_change_on_the_timeline(admin_client):
    from cxm.followups.models import EventKind

    agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    assert followup.priority == "normal"

    r = followup_change(admin_client, followup, priority="high")

    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.priority == "high"
    event = followup.events.get(kind=EventKind.PRIORITY_CHANGED)
    assert event.description() == "High" and event.actor.is_superuser


def test_it_keeps_a_resolved_follow_up_as_it_was_resolved(admin_client):
    from cxm.followups.services import followup_resolve

    first, second = agent(), agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    followup_resolve(
        followup=followup, actor=first, resolution="Refunded", root_cause="price"
    )
    events = followup.events.count()

    r = followup_change(admin_client, followup, owner=second.pk, priority="low")

    assert r.status_code == 302
    followup.refresh_from_db()
    assert (followup.owner, followup.priority) == (first, "high")
    assert followup.events.count() == events


def test_it_shows_responses_and_invitations_but_never_writes_them(admin_client):
    agent()
    response = response_record(invitation=InvitationFactory(), score=9)
    invitation = response.invitation

    for url in ["/admin/surveys/response/add/", "/admin/surveys/invitation/add/"]:
        assert admin_client.get(url).status_code == 403
    r = admin_client.get(f"/admin/surveys/response/{response.pk}/change/")
    assert r.status_code == 200 and b'name="score"' not in r.content
    r = admin_client.post(
        f"/admin/surveys/response/{response.pk}/change/",
        {"invitation": invitation.pk, "score": "2", "comment": "changed"},
    )
    assert r.status_code == 403
    response.refresh_from_db()
    assert response.score == 9
    assert not hasattr(response, "followup")
    r = admin_client.post(
        f"/admin/surveys/invitation/{invitation.pk}/change/", {"status": "queued"}
    )
    assert r.status_code == 403


@pytest.mark.parametrize("properties", ["", "   ", "null"], ids=repr)
def test_it_stores_no_customer_properties_for_an_empty_or_null_box(
    admin_client, properties
):
    data = {"email": "kim@example.com", "name": "Kim", "locale": "ko"}
    r = admin_client.post(
        "/admin/customers/customer/add/", {**data, "properties": properties}
    )
    assert r.status_code == 302
    customer = Customer.objects.get()
    assert customer.properties == {}

    Customer.objects.filter(pk=customer.pk).update(properties={"plan": "pro"})
    r = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {**data, "properties": properties},
    )
    assert r.status_code == 302
    customer.refresh_from_db()
    assert customer.properties == {}


@pytest.mark.parametrize("conditions", ["", "   ", "null"], ids=repr)
def test_it_saves_a_segment_of_everyone_when_the_conditions_box_is_empty(
    admin_client, conditions
):
    r = admin_client.post("/admin/customers/segment/add/", segment_form(conditions))
    assert r.status_code == 302
    assert Segment.objects.get().conditions == []


# JSON that Python's parser cannot read, or that it reads but jsonb cannot store.
UNREADABLE_JSON = [
    ("[" * 100_000 + "]" * 100_000, "Nest values at most 32 levels deep."),
    ('{"a": ' + "9" * 5000 + "}", "Numbers must have at most 4300 digits."),
    ('{"a": "\\ud800"}', "Text must not contain NUL or unpaired surrogate"),
]
UNREADABLE_JSON_IDS = ["nested 100,000 deep", "5,000 digits", "lone surrogate"]
UNSTORABLE_JSON = [
    ('{"score": NaN}', "Numbers must be finite."),
    ('{"plan": "pro\\u0000"}', "Text must not contain NUL"),
    ('["pro"]', "Expected an object"),
]
UNSTORABLE_JSON_IDS = ["NaN", "NUL", "not an object"]


@pytest.mark.parametrize(
    "properties, message",
    UNREADABLE_JSON + UNSTORABLE_JSON,
    ids=UNREADABLE_JSON_IDS + UNSTORABLE_JSON_IDS,
)
def test_it_redraws_the_customer_form_for_properties_it_cannot_store(
    admin_client, properties, message
):
    r = admin_client.post(
        "/admin/customers/customer/add/",
        {
            "email": "kim@example.com",
            "name": "Kim",
            "locale": "ko",
            "properties": properties,
        },
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["properties"])
    assert 'name="properties"' in r.content.decode()
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "conditions, message",
    [
        (UNREADABLE_JSON[0][0], UNREADABLE_JSON[0][1]),
        ("[" + "9" * 5000 + "]", UNREADABLE_JSON[1][1]),
        ('["\\ud800"]', UNREADABLE_JSON[2][1]),
    ],
    ids=UNREADABLE_JSON_IDS,
)
def test_it_redraws_the_segment_form_for_conditions_it_cannot_read(
    admin_client, conditions, message
):
    segment = segment_create(name="Everyone", conditions=[])
    r = admin_client.post(
        f"/admin/customers/segment/{segment.pk}/change/",
        segment_form(conditions, name="Renamed"),
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["conditions"])
    assert 'name="conditions"' in r.content.decode()
    segment.refresh_from_db()
    assert segment.name == "Everyone"


def test_it_keeps_a_departed_owner_when_only_the_priority_changes(admin_client):
    owner = agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    owner.groups.clear()  # left the CX team; the follow-up is still theirs

    r = followup_change(admin_client, followup, priority="high")

    assert r.status_code == 302
    followup.refresh_from_db()
    assert (followup.owner, followup.priority) == (owner, "high")
    assert not followup.events.filter(kind="assigned", text="").exists()


def test_it_changes_nothing_on_a_follow_up_resolved_meanwhile(admin_client):
    """The agent resolved it while the admin page was open."""
    from cxm.followups.services import followup_resolve

    owner = agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    form_page = admin_client.get(f"/admin/followups/followup/{followup.pk}/change/")
    assert b'name="priority"' in form_page.content
    followup_resolve(
        followup=followup, actor=owner, resolution="Called", root_cause="other"
    )

    events = followup.events.count()

    followup_change(admin_client, followup, priority="high")

    followup.refresh_from_db()
    assert followup.priority == "normal"
    assert followup.events.count() == events


def test_it_does_not_delete_responses_or_invitations_in_the_admin(admin_client):
    agent()
    response = response_record(invitation=InvitationFactory(), score=2)
    for url in [
        f"/admin/surveys/response/{response.pk}/delete/",
        f"/admin/surveys/invitation/{response.invitation_id}/delete/",
    ]:
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Response.objects.filter(pk=response.pk).exists()
    assert response.followup.pk


def test_its_follow_up_form_refuses_changes_once_the_follow_up_is_resolved():
    """The narrow race: resolved after the admin built its form, before it saves."""
    from cxm.followups.admin import FollowUpForm
    from cxm.followups.services import followup_resolve

    owner = agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    form = FollowUpForm(data={"owner": owner.pk, "priority": "high"}, instance=followup)
    followup_resolve(
        followup=followup, actor=owner, resolution="Called", root_cause="other"
    )

    assert not form.is_valid()
    assert form.non_field_errors() == ["This follow-up was resolved meanwhile."]


def test_it_offers_no_delete_for_a_sent_campaign_or_a_survey_in_use(admin_client):
    """Deleting them would first list every invitation and answer: minutes on a
    big campaign, and history lost."""
    sent = CampaignFactory()
    campaign_send(campaign=sent)
    draft = CampaignFactory(survey=sent.survey)
    unused = SurveyFactory()

    assert (
        admin_client.get(f"/admin/surveys/campaign/{sent.pk}/delete/").status_code
        == 403
    )
    assert (
        admin_client.get(f"/admin/surveys/survey/{sent.survey_id}/delete/").status_code
        == 403
    )
    assert (
        admin_client.get(f"/admin/surveys/campaign/{draft.pk}/delete/").status_code
        == 200
    )
    assert (
        admin_client.get(f"/admin/surveys/survey/{unused.pk}/delete/").status_code
        == 200
    )
    for model in ("campaign", "survey"):
        page = admin_client.get(f"/admin/surveys/{model}/").content.decode()
        assert 'value="delete_selected"' not in page


# Campaign rules and where invitations stand


def deliver(campaign) -> None:
    ids = list(campaign.invitations.values_list("pk", flat=True))
    invitations_deliver(invitation_ids=ids)


def test_it_refuses_renaming_a_sent_campaign_through_the_service(admin_client):
    survey = SurveyFactory(name="NPS")
    campaign = CampaignFactory(name="Old", survey=survey)
    campaign_send(campaign=campaign)

    r = admin_client.post(
        f"/admin/surveys/campaign/{campaign.pk}/change/",
        {"name": "New", **RULES},
        follow=True,
    )

    assert "Only a draft campaign can be changed." in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.name == "Old"


def test_it_saves_a_drafts_rules_and_per_language_wording_through_the_service(
    admin_client,
):
    survey = SurveyFactory(name="NPS")
    r = admin_client.post(
        "/admin/surveys/campaign/add/",
        {
            "name": "Spring",
            "survey": survey.pk,
            "segment": "",
            "reminders": 2,
            "reminder_interval_days": 4,
            "contact_frequency_days": 14,
            "expires_after_days": 10,
            "subject_ko": "봄 설문조사",
            "intro_en": "Thanks for shopping with us.",
        },
    )
    assert r.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.reminders, campaign.reminder_interval_days) == (2, 4)
    assert (campaign.contact_frequency_days, campaign.expires_after_days) == (14, 10)
    assert campaign.subject_ko == "봄 설문조사" and campaign.subject_en == ""
    assert campaign.intro_en == "Thanks for shopping with us."


def test_it_shows_counts_per_state_and_skip_reasons_on_the_campaign(
    admin_client, django_assert_num_queries, mailoutbox
):
    customers = CustomerFactory.create_batch(4, properties={"p": "1"})
    earlier = CampaignFactory(segment=property_segment("p", "1"))
    Customer.objects.filter(pk=customers[0].pk).update(properties={})
    campaign_send(campaign=earlier)
    deliver(earlier)  # the three are sent now
    campaign = CampaignFactory()
    campaign_send(campaign=campaign)
    deliver(campaign)  # three recently contacted, one sent
    response_record(invitation=campaign.invitations.get(customer=customers[0]), score=9)

    url = f"/admin/surveys/campaign/{campaign.pk}/change/"
    admin_client.get(url)  # what Django caches per process (content types)
    # The audience preview is one of them: one query, as the stats.
    with django_assert_num_queries(6):
        html = admin_client.get(url).content.decode()

    summary = html.split("field-invitation_summary", 1)[1].split("field-metric", 1)[0]
    assert "4 invitations" in summary
    assert ">Skipped: 3</a>" in summary and ">Recently contacted: 3</a>" in summary
    assert (
        f"status__exact=skipped&amp;campaign__id__exact={campaign.pk}" in (summary)
        or f"campaign__id__exact={campaign.pk}&amp;status__exact=skipped" in summary
    )
    assert "Response rate: 100.0 % (1 of 1 delivered)" in summary


def test_it_lists_invitations_with_state_and_times_in_constant_queries(
    admin_client, django_assert_num_queries
):
    CustomerFactory()
    campaign_send(campaign=CampaignFactory())
    with django_assert_num_queries(6) as few:
        admin_client.get("/admin/surveys/invitation/")
    CustomerFactory.create_batch(3)
    campaign_send(campaign=CampaignFactory(contact_frequency_days=0))
    with django_assert_num_queries(len(few.captured_queries)):
        r = admin_client.get("/admin/surveys/invitation/?skip_reason__exact=")
    html = r.content.decode()
    assert "field-skip_reason" in html and "field-reminders_sent" in html


# Campaign schedules


def test_it_saves_a_spread_schedule_from_the_admin_form(admin_client):
    survey = SurveyFactory(name="NPS")
    r = admin_client.post(
        "/admin/surveys/campaign/add/",
        {
            "name": "Spring",
            "survey": survey.pk,
            **RULES,
            "schedule": "spread",
            "starts_at_0": "2027-03-01",
            "starts_at_1": "09:00:00",
            "window_days": "10",
            "window_weekdays": ["1", "2", "3", "4", "5"],
            "window_start_hour": "9",
            "window_end_hour": "11",
        },
    )

    assert r.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.schedule, campaign.window_weekdays) == ("spread", [1, 2, 3, 4, 5])


def test_it_says_what_is_wrong_with_a_schedule_in_the_admin_form(admin_client):
    survey = SurveyFactory(name="NPS")
    r = admin_client.post(
        "/admin/surveys/campaign/add/",
        {
            "name": "Spring",
            "survey": survey.pk,
            **RULES,
            "schedule": "triggered",
            "trigger_kind": "purchase",
            "trigger_delay_hours": "0",
        },
    )

    assert r.status_code == 200
    assert "at least 1" in r.content.decode()
    assert not Campaign.objects.exists()


def test_it_pauses_and_stops_campaigns_from_the_admin_actions(admin_client):
    CustomerFactory()
    campaign = CampaignFactory(schedule="recurring", recur_every_days=30)
    campaign_send(campaign=campaign)

    for action, status in (
        ("pause", "paused"),
        ("resume", "running"),
        ("stop", "stopped"),
    ):
        r = admin_client.post(
            "/admin/surveys/campaign/",
            {"action": action, "_selected_action": [campaign.pk]},
            follow=True,
        )
        campaign.refresh_from_db()
        assert campaign.status == status, r.content.decode()

    r = admin_client.post(
        "/admin/surveys/campaign/",
        {"action": "resume", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "Only a paused campaign can be resumed." in r.content.decode()
