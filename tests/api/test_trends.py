"""GET /api/metrics/trend/ and /api/metrics/compare/: figures, params, 400s."""

from datetime import UTC, datetime, timedelta

import pytest

from surveys.models import Invitation, Response
from tests.api.helpers import answer
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    SurveyFactory,
    property_segment,
)

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 1, 5, 10, tzinfo=UTC)


def answered(score, when, **customer):
    campaign = customer.pop("campaign", None) or CampaignFactory()
    response = answer(score, campaign=campaign, customer=CustomerFactory(**customer))
    Response.objects.filter(pk=response.pk).update(created_at=when)
    Invitation.objects.filter(pk=response.invitation_id).update(sent_at=when)
    return response


def test_it_gives_the_weekly_trend_with_rate_and_distribution(api):
    campaign = CampaignFactory()
    for score in (10, 9, 0, 7):
        answered(score, MONDAY, campaign=campaign)

    r = api.get(
        "/api/metrics/trend/?kind=nps&interval=week"
        "&since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z"
    )

    assert r.status_code == 200, r.content
    body = r.json()
    assert body["points"] == [
        {
            "period": "2026-01-05",
            "series": "",
            "score": 25.0,
            "responses": 4,
            "negative": 1,
            "neutral": 1,
            "positive": 2,
            "margin_of_error": 81.3,
        }
    ]
    assert body["response_rate"] == [
        {
            "period": "2026-01-05",
            "series": "",
            "delivered": 4,
            "responses": 4,
            "response_rate": 100.0,
        }
    ]
    assert [d["responses"] for d in body["distribution"]] == [
        1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1
    ]  # fmt: skip


def test_it_splits_the_trend_by_plan(api):
    answered(10, MONDAY, properties={"plan": "pro"})
    answered(0, MONDAY, properties={"plan": "basic"})

    body = api.get("/api/metrics/trend/?by=plan").json()

    assert {s["key"] for s in body["series"]} == {"pro", "basic"}
    assert {p["series"]: p["score"] for p in body["points"]} == {
        "pro": 100.0,
        "basic": -100.0,
    }


def test_it_splits_the_trend_by_segment(api):
    answered(10, MONDAY, properties={"plan": "pro"})
    answered(0, MONDAY, properties={"plan": "basic"})
    pro = property_segment("plan", "pro")

    body = api.get("/api/metrics/trend/?by=segment&interval=month").json()

    assert body["series"] == [{"key": str(pro.pk), "label": pro.name}]
    assert [(p["period"], p["score"]) for p in body["points"]] == [
        ("2026-01-01", 100.0)
    ]


def test_it_keeps_one_campaign_and_one_segment(api):
    campaign = CampaignFactory()
    answered(10, MONDAY, campaign=campaign, properties={"plan": "pro"})
    answered(0, MONDAY, campaign=campaign, properties={"plan": "basic"})
    answered(0, MONDAY, properties={"plan": "pro"})
    pro = property_segment("plan", "pro")

    body = api.get(
        f"/api/metrics/trend/?campaign={campaign.pk}&segment={pro.pk}"
    ).json()

    assert [(p["score"], p["responses"]) for p in body["points"]] == [(100.0, 1)]


@pytest.mark.parametrize(
    "query, field",
    [
        ("kind=custom", "kind"),
        ("interval=day", "interval"),
        ("by=plan%20or%201", "by"),
        ("since=yesterday", "since"),
        ("campaign=abc", "campaign"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"),
        ("by=segment&segment=1", "non_field_errors"),
        ("campaign=1&survey=1", "non_field_errors"),
    ],
)
def test_it_refuses_bad_trend_params_with_a_400(api, query, field):
    r = api.get(f"/api/metrics/trend/?{query}")

    assert r.status_code == 400, r.content
    assert field in r.json()


def test_it_answers_404_for_a_campaign_of_another_kind_or_none(api):
    csat = CampaignFactory(survey=SurveyFactory(kind="csat"))

    assert api.get(f"/api/metrics/trend/?campaign={csat.pk}").status_code == 404
    assert api.get("/api/metrics/trend/?segment=999999").status_code == 404


def test_it_compares_two_periods(api):
    campaign = CampaignFactory(survey=SurveyFactory(kind="csat"))
    a = datetime(2026, 1, 1, tzinfo=UTC)
    b = datetime(2026, 2, 1, tzinfo=UTC)
    for n in range(40):
        answered(5 if n < 20 else 2, a + timedelta(hours=n), campaign=campaign)
        answered(4 if n < 30 else 3, b + timedelta(hours=n), campaign=campaign)

    r = api.get(
        "/api/metrics/compare/?kind=csat"
        "&a_since=2026-01-01T00:00:00Z&a_until=2026-02-01T00:00:00Z"
        "&b_since=2026-02-01T00:00:00Z&b_until=2026-03-01T00:00:00Z"
    )

    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["a"]["score"], body["b"]["score"], body["difference"]) == (
        50.0,
        75.0,
        25.0,
    )
    assert body["a"]["since"] == "2026-01-01T00:00:00Z"
    assert body["test"] == "two-proportion-z"
    assert body["statistic"] == pytest.approx(2.3094, abs=1e-4)
    assert body["significant"] is True
    assert body["df"] is None


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "a_since"),
        (
            "a_since=2026-01-02T00:00:00Z&a_until=2026-01-01T00:00:00Z"
            "&b_since=2026-02-01T00:00:00Z&b_until=2026-03-01T00:00:00Z",
            "a_until",
        ),
    ],
)
def test_it_refuses_bad_compare_params_with_a_400(api, query, field):
    r = api.get(f"/api/metrics/compare/?{query}")

    assert r.status_code == 400
    assert field in r.json()


def test_it_runs_a_fixed_number_of_queries_for_a_trend(api, django_assert_num_queries):
    for n in range(6):
        answered(n, MONDAY + timedelta(days=7 * n), properties={"plan": f"p{n % 3}"})

    # The token's user, then the trend, the response rate and the distribution.
    with django_assert_num_queries(4):
        assert api.get("/api/metrics/trend/?by=plan").status_code == 200


def test_it_lets_only_cx_staff_read_trends(outsider_api):
    assert outsider_api.get("/api/metrics/trend/").status_code == 403
