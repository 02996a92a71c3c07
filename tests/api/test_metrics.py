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


@pytest.mark.parametrize("value", ["abc", "1.5", "1%00"])
def test_it_answers_400_to_a_campaign_that_is_not_a_whole_number(api, value):
    r = api.get(f"/api/metrics/nps/?campaign={value}")

    assert r.status_code == 400
    assert list(r.json()) == ["campaign"]


@pytest.mark.parametrize("value", ["999999", "-1", "99999999999999999999999999"])
def test_it_answers_404_to_an_unknown_campaign(api, value):
    r = api.get(f"/api/metrics/nps/?campaign={value}")

    assert r.status_code == 404
