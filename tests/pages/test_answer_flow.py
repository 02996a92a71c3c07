"""The customer's pages for every kind: one tap for the score, the rest next."""

import re

import pytest

from surveys.models import Response
from surveys.services import response_record, survey_create
from tests.factories import InvitationFactory

pytestmark = pytest.mark.django_db

FAST = {"value": "fast", "en": "Fast delivery", "ko": "빠른 배송"}
PRICE = {"value": "price", "en": "Fair price", "ko": "합리적인 가격"}


def invite(kind="nps", questions=None, **customer):
    survey = survey_create(name=kind, kind=kind, questions=questions)
    return InvitationFactory(
        campaign__survey=survey, **{f"customer__{k}": v for k, v in customer.items()}
    )


def url(invitation, suffix=""):
    return f"/s/{invitation.token}/{suffix}"


def test_it_saves_the_score_from_the_email_with_one_tap(client):
    invitation = invite()
    page = client.get(url(invitation) + "?score=7").content.decode()
    assert 'value="7" checked' in page
    assert ">Send my score</button>" in page
    # The first page asks the score only: one tap sends it.
    assert 'name="comment"' not in page

    r = client.post(url(invitation), {"score": "7"})

    assert r.status_code == 302
    assert r["Location"] == url(invitation, "more/")
    assert Response.objects.get().score == 7


def test_it_asks_the_rest_on_the_next_page_and_thanks(client):
    invitation = invite(
        questions=[
            {"type": "single_choice", "text_en": "Plan?", "choices": [FAST, PRICE]}
        ]
    )
    client.post(url(invitation), {"score": "3"})
    choice = invitation.campaign.survey.questions.get(role="").field_name

    page = client.get(url(invitation, "more/")).content.decode()
    assert "Thank you, your score is saved." in page
    assert 'name="comment"' in page and f'name="{choice}"' in page
    assert 'name="score"' not in page

    r = client.post(url(invitation, "more/"), {"comment": "late", choice: "price"})

    assert r["Location"] == url(invitation, "thanks/")
    response = Response.objects.get()
    assert (response.score, response.comment) == (3, "late")
    assert response.answers.count() == 3


def test_it_shows_the_error_next_to_a_required_question_on_the_next_page(client):
    invitation = invite(
        questions=[{"type": "short_text", "text_en": "Your role?", "required": True}]
    )
    client.post(url(invitation), {"score": "9"})
    role = invitation.campaign.survey.questions.get(role="").field_name

    r = client.post(url(invitation, "more/"), {"comment": "nice", role: ""})

    assert r.status_code == 400
    html = r.content.decode()
    assert (
        f'<p class="field-error" id="{role}-error">Please answer this question.' in html
    )
    assert f'aria-invalid="true" aria-describedby="{role}-error"' in html
    assert ">nice</textarea>" in html  # what was typed stays
    assert Response.objects.get().comment == ""


def test_it_sends_a_customer_without_a_score_to_the_first_page(client):
    invitation = invite()
    r = client.get(url(invitation, "more/"))
    assert r.status_code == 302
    assert r["Location"] == url(invitation)


def test_it_thanks_right_away_when_the_score_is_all_there_is_to_ask(client):
    survey = survey_create(name="Score only", kind="csat")
    survey_questions = list(survey.questions.all())
    from surveys.services import survey_update

    survey_update(survey=survey, questions=[{"id": survey_questions[0].pk}])
    invitation = InvitationFactory(campaign__survey=survey)

    r = client.post(url(invitation), {"score": "5"})

    assert r["Location"] == url(invitation, "thanks/")


@pytest.mark.parametrize(
    "kind, scores, low, high",
    [
        ("csat", "12345", "Very dissatisfied", "Very satisfied"),
        ("ces", "1234567", "Strongly disagree", "Strongly agree"),
    ],
)
def test_it_offers_each_kinds_own_scale_and_end_labels(client, kind, scores, low, high):
    invitation = invite(kind)
    html = client.get(url(invitation)).content.decode()

    values = re.findall(r'name="score" id="score-\d+" value="(\d+)"', html)
    assert "".join(values) == scores
    assert f">{low}</span>" in html and f">{high}</span>" in html
    r = client.post(url(invitation), {"score": "0"})
    assert r.status_code == 400
    assert f"Choose a score from 1 to {scores[-1]}." in r.content.decode()


def test_it_asks_a_custom_survey_on_one_page(client):
    invitation = invite(
        "custom",
        questions=[
            {"type": "score", "text_en": "Setup?", "scale_low": 1, "scale_high": 4},
            {"type": "multiple_choice", "text_en": "What?", "choices": [FAST, PRICE]},
            {"type": "long_text", "text_en": "More?"},
        ],
    )
    score, choices, text = invitation.campaign.survey.questions.all()
    html = client.get(url(invitation)).content.decode()
    assert '<h1 class="page-title">A few questions from cxm</h1>' in html
    assert 'type="checkbox"' in html
    assert ">Send</button>" in html

    r = client.post(
        url(invitation),
        {
            score.field_name: "2",
            choices.field_name: ["fast", "price"],
            text.field_name: "",
        },
    )

    assert r["Location"] == url(invitation, "thanks/")
    response = Response.objects.get()
    assert response.score is None
    assert {a.question_id: a.value for a in response.answers.all()} == {
        score.pk: 2,
        choices.pk: ["fast", "price"],
    }


def test_it_shows_what_was_answered_when_the_link_is_opened_again(client):
    invitation = invite(
        questions=[
            {"type": "multiple_choice", "text_en": "What?", "choices": [FAST, PRICE]}
        ]
    )
    choice = invitation.campaign.survey.questions.get(role="").field_name
    response_record(
        invitation=invitation, answers={"score": 8, "comment": "ok", choice: ["price"]}
    )

    first = client.get(url(invitation)).content.decode()
    more = client.get(url(invitation, "more/")).content.decode()

    assert 'value="8" checked' in first
    assert "You answered on " in first
    assert ">ok</textarea>" in more
    assert f'id="{choice}-price" value="price" checked' in more
    assert f'id="{choice}-fast" value="fast">' in more


def test_it_invites_a_promoter_to_review_when_a_link_is_set(client, settings):
    settings.PROMOTER_LINK_URL = "https://reviews.example.com/acme"
    promoter, detractor = invite(), invite()
    response_record(invitation=promoter, score=10)
    response_record(invitation=detractor, score=2)

    happy = client.get(url(promoter, "thanks/")).content.decode()
    unhappy = client.get(url(detractor, "thanks/")).content.decode()

    assert 'href="https://reviews.example.com/acme"' in happy
    assert "reviews.example.com" not in unhappy
    assert "Someone from our team will get in touch" in unhappy


def test_it_draws_the_brand_from_settings(client, settings):
    settings.COMPANY_NAME = "Acme"
    settings.COMPANY_LOGO = "cxm/favicon.svg"
    settings.BRAND_COLOR = "#fde047"
    settings.BRAND_TEXT_COLOR = "#111827"
    invitation = invite()

    html = client.get(url(invitation)).content.decode()
    css = client.get("/brand.css").content.decode()

    assert '<img class="logo" src="/static/cxm/favicon.svg" alt="Acme"' in html
    assert '<link rel="icon" href="/static/cxm/favicon.svg"' in html
    assert "recommend Acme to a friend" in html
    assert "<title>Your feedback · Acme</title>" in html
    assert "--brand: #fde047; --brand-ink: #111827;" in css


def test_it_makes_no_request_to_another_origin_and_stays_small(client):
    invitation = invite()
    r = client.get(url(invitation) + "?score=9")
    html = r.content.decode()

    assert not re.search(r'(src|href)="(https?:)?//', html)
    from django.conf import settings

    css = sum(
        (settings.BASE_DIR / "static/cxm" / name).stat().st_size
        for name in ("tokens.css", "cxm.css")
    )
    brand = len(client.get("/brand.css").content)
    assert len(r.content) + css + brand < 50_000


def test_it_renders_the_next_page_in_constant_queries(
    client, django_assert_max_num_queries
):
    invitation = invite()
    response_record(invitation=invitation, score=5, comment="meh")
    with django_assert_max_num_queries(4):
        client.get(url(invitation, "more/"))


def test_it_refuses_two_scores_for_one_question(client):
    invitation = invite()
    r = client.post(url(invitation), {"score": ["3", "9"]})
    assert r.status_code == 400
    assert "Choose a score from 0 to 10." in r.content.decode()
    assert not Response.objects.exists()


def test_it_sums_up_the_errors_at_the_top_with_links_to_the_questions(client):
    invitation = invite(
        questions=[{"type": "short_text", "text_en": "Your role?", "required": True}]
    )
    client.post(url(invitation), {"score": "9"})
    role = invitation.campaign.survey.questions.get(role="").field_name

    r = client.post(url(invitation, "more/"), {"comment": "x" * 5001, role: ""})

    html = r.content.decode()
    assert "<title>Error: Your feedback · cxm</title>" in html
    summary = html[html.index('role="alert"') : html.index("</ul>")]
    assert 'href="#id_comment"' in summary
    assert f'href="#id_{role}"' in summary


def test_it_sends_a_thank_you_link_opened_too_early_to_the_question(client):
    invitation = invite()
    r = client.get(url(invitation, "thanks/"))
    assert r.status_code == 302
    assert r["Location"] == url(invitation)
