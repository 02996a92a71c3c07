"""The responses page: the filters it shares with the API list, its keyset pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from surveys import selectors
from surveys.models import Response
from surveys.services import response_record, survey_create
from tests.api.helpers import answer
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    UserFactory,
    agent,
    property_segment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client):
    client.force_login(agent())
    return client


def emails(r) -> list[str]:
    """The customers' emails in the page's rows, in order."""
    assert r.status_code == 200, r.content
    return [row.customer.email for row in r.context["rows"]]


def test_it_is_for_cx_staff_only(client):
    assert client.get("/responses/").status_code == 302
    client.force_login(UserFactory())
    assert client.get("/responses/").status_code == 403


def test_it_shows_each_response_with_its_other_answers(agent_client):
    survey = survey_create(
        name="Onboarding",
        kind="nps",
        questions=[{"type": "short_text", "text_en": "Your role?"}],
    )
    invitation = InvitationFactory(
        campaign__survey=survey,
        campaign__name="Spring",
        customer__email="jane@example.com",
    )
    extra = survey.questions.get(role="")
    response_record(
        invitation=invitation,
        answers={"score": 3, "comment": "Too slow", extra.field_name: "CTO"},
    )

    r = agent_client.get("/responses/")

    html = r.content.decode()
    assert r.status_code == 200
    for shown in ["jane@<wbr>example.<wbr>com", "Spring", "Too slow", "Detractor"]:
        assert shown in html
    assert "Your role?" in html
    assert "CTO" in html


def test_it_filters_by_campaigns_kind_bucket_and_term(agent_client):
    spring, autumn, other = CampaignFactory(), CampaignFactory(), CampaignFactory()
    answer(9, "Fast shipping", campaign=spring, customer__email="a@example.com")
    answer(2, "The box was shipped late", campaign=autumn, customer__email="b@x.com")
    answer(3, "배송이 너무 늦었어요", campaign=other, customer__email="c@x.com")
    answer(2, "ok", campaign__survey__kind="csat", customer__email="d@x.com")

    both = agent_client.get(f"/responses/?campaign={spring.pk}&campaign={autumn.pk}")
    assert sorted(emails(both)) == ["a@example.com", "b@x.com"]
    assert emails(agent_client.get("/responses/?bucket=detractor")) == [
        "c@x.com",
        "b@x.com",
    ]
    assert emails(agent_client.get("/responses/?kind=csat")) == ["d@x.com"]
    assert emails(agent_client.get("/responses/?bucket=dissatisfied")) == ["d@x.com"]
    # A theme's term finds its other forms: ship → shipping, shipped.
    assert emails(agent_client.get("/responses/?term=ship")) == [
        "b@x.com",
        "a@example.com",
    ]
    assert emails(agent_client.get("/responses/?term=배송")) == ["c@x.com"]


def test_it_filters_by_days_until_inclusive_and_segment(agent_client):
    pro = CustomerFactory(email="pro@example.com", properties={"plan": "pro"})
    old = answer(9, customer=pro)
    new = answer(3, customer__email="free@example.com")
    Response.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    old_day = (timezone.now() - timedelta(days=10)).date().isoformat()
    segment = property_segment("plan", "pro")

    assert emails(agent_client.get(f"/responses/?until={old_day}")) == [
        "pro@example.com"
    ]
    assert emails(agent_client.get(f"/responses/?since={old_day}")) == [
        "free@example.com",
        "pro@example.com",
    ]
    r = agent_client.get(f"/responses/?since={timezone.now().date().isoformat()}")
    assert emails(r) == ["free@example.com"]
    assert emails(agent_client.get(f"/responses/?segment={segment.pk}")) == [
        "pro@example.com"
    ]
    assert new.pk


@pytest.mark.parametrize(
    "query",
    [
        "campaign=abc",
        "campaign=999999",
        "since=2024-02-30",
        "until=tomorrow",
        "bucket=angry",
        "segment=999999",
        "cursor=!!",
        "cursor=bm90LWEtY3Vyc29y",
    ],
)
def test_it_answers_400_with_a_message_to_bad_filters(agent_client, query):
    r = agent_client.get(f"/responses/?{query}")

    assert r.status_code == 400
    assert r.context["form"].errors


def test_it_pages_newest_first_after_a_cursor(agent_client, monkeypatch):
    monkeypatch.setattr(selectors, "RESPONSES_PAGE", 2)
    made = [answer(score).pk for score in [1, 2, 3]]
    # Two answered in the same microsecond still come once each, by id.
    Response.objects.update(created_at=timezone.now())

    first = agent_client.get("/responses/?kind=nps")
    second = agent_client.get(
        f"/responses/?kind=nps&cursor={first.context['next_cursor']}"
    )

    assert [row.pk for row in first.context["rows"]] == made[:0:-1]
    assert [row.pk for row in second.context["rows"]] == made[:1]
    assert second.context["next_cursor"] is None
    assert 'id="next"' in first.content.decode()


def test_it_lists_in_a_constant_number_of_queries(
    agent_client, django_assert_num_queries
):
    survey = survey_create(
        name="S", kind="nps", questions=[{"type": "short_text", "text_en": "Role?"}]
    )
    extra = survey.questions.get(role="")

    def some(n):
        for i in range(n):
            response_record(
                invitation=InvitationFactory(campaign__survey=survey),
                answers={"score": i % 11, extra.field_name: f"r{i}"},
            )

    some(2)
    # session, user, groups, the campaigns, surveys and segments to choose from,
    # rows, answers, and the menu's "may see reports"
    with django_assert_num_queries(9) as few:
        assert agent_client.get("/responses/").status_code == 200
    some(8)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(agent_client.get("/responses/").context["rows"]) == 10
