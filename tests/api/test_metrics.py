"""GET /api/metrics/nps/: the NPS of a campaign, or of all responses."""

import pytest

from tests.api.helpers import answer
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

FIELDS = {"nps", "promoters", "passives", "detractors", "responses", "margin_of_error"}


def test_it_computes_a_campaigns_nps_on_a_worked_example(api):
    campaign = CampaignFactory()
    # 5 promoters, 3 passives, 2 detractors
    for score in (9, 10, 9, 10, 10, 7, 8, 7, 0, 6):
        answer(score, campaign=campaign)
    answer(0, campaign=CampaignFactory())  # another campaign's detractor

    r = api.get(f"/api/metrics/nps/?campaign={campaign.pk}")

    assert r.status_code == 200
    # 50 % − 20 % = 30; margin 1.96 × 100 × √((0.5 + 0.2 − 0.3²) / 10) = 48.4
    assert r.json() == {
        "nps": 30.0,
        "promoters": 5,
        "passives": 3,
        "detractors": 2,
        "responses": 10,
        "margin_of_error": 48.4,
    }


def test_it_computes_the_nps_of_all_responses_without_a_campaign(api):
    answer(10, campaign=CampaignFactory())
    answer(3, campaign=CampaignFactory())
    answer(8, campaign=CampaignFactory())

    body = api.get("/api/metrics/nps/").json()

    assert set(body) == FIELDS
    assert (body["promoters"], body["passives"], body["detractors"]) == (1, 1, 1)
    assert body["responses"] == 3
    assert body["nps"] == 0.0


def test_it_answers_nulls_without_responses(api):
    campaign = CampaignFactory()

    body = api.get(f"/api/metrics/nps/?campaign={campaign.pk}").json()

    assert body == {
        "nps": None,
        "promoters": 0,
        "passives": 0,
        "detractors": 0,
        "responses": 0,
        "margin_of_error": None,
    }


@pytest.mark.parametrize("value", ["abc", "1.5", "1%00", "1.0", "%201", "1_0", "+1"])
def test_it_answers_400_to_a_campaign_that_is_not_a_whole_number(api, value):
    r = api.get(f"/api/metrics/nps/?campaign={value}")

    assert r.status_code == 400
    assert list(r.json()) == ["campaign"]


@pytest.mark.parametrize("value", ["999999", "-1", "99999999999999999999999999"])
def test_it_answers_404_to_an_unknown_campaign(api, value):
    r = api.get(f"/api/metrics/nps/?campaign={value}")

    assert r.status_code == 404


# CSAT and CES


def test_it_computes_a_csat_campaigns_csat(api):
    campaign = CampaignFactory(survey__kind="csat")
    for score in (5, 4, 4, 3, 1, 5, 2, 4):
        answer(score, campaign=campaign)

    r = api.get(f"/api/metrics/csat/?campaign={campaign.pk}")

    assert r.status_code == 200
    assert r.json() == {
        "csat": 62.5,
        "satisfied": 5,
        "neutral": 1,
        "dissatisfied": 2,
        "responses": 8,
        "margin_of_error": 33.5,
    }


def test_it_computes_a_surveys_ces(api):
    campaign = CampaignFactory(survey__kind="ces")
    for score in (7, 6, 5, 5, 4, 3, 2, 6, 7, 5):
        answer(score, campaign=campaign)

    r = api.get(f"/api/metrics/ces/?survey={campaign.survey_id}")

    assert r.status_code == 200
    assert r.json() == {
        "ces": 5.0,
        "easy_share": 70.0,
        "easy": 7,
        "neutral": 1,
        "hard": 2,
        "responses": 10,
        "margin_of_error": 1.01,
        "easy_share_margin_of_error": 28.4,
    }


def test_it_counts_a_period(api):
    from datetime import timedelta

    from django.utils import timezone

    from surveys.models import Response

    old = answer(0)
    answer(10)
    Response.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=9)
    )
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert api.get("/api/metrics/nps/", {"since": since}).json()["nps"] == 100.0
    assert api.get("/api/metrics/nps/", {"until": since}).json()["nps"] == -100.0
    r = api.get("/api/metrics/nps/", {"since": "last week"})
    assert r.status_code == 400
    assert list(r.json()) == ["since"]
    # An empty parameter is no parameter, as an HTML form sends it.
    assert api.get("/api/metrics/nps/?since=&campaign=").json()["nps"] == 0.0


def test_it_answers_404_to_a_campaign_of_another_kind(api):
    campaign = CampaignFactory(survey__kind="csat")

    r = api.get(f"/api/metrics/nps/?campaign={campaign.pk}")

    assert r.status_code == 404
    assert "CSAT" in r.json()["detail"]


@pytest.mark.parametrize("kind", ["csat", "ces"])
def test_it_answers_404_to_an_unknown_survey(api, kind):
    assert api.get(f"/api/metrics/{kind}/?survey=999999").status_code == 404


def test_it_answers_404_to_a_survey_of_another_kind_beside_a_campaign(api):
    campaign = CampaignFactory(survey__kind="csat")
    nps = CampaignFactory().survey

    r = api.get(f"/api/metrics/csat/?campaign={campaign.pk}&survey={nps.pk}")

    assert r.status_code == 404
    assert "is a survey of another kind: NPS" in r.json()["detail"]
