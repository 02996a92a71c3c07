"""NPS, counted by the database: buckets, the formula, its margin of error."""

import math

import pytest

from surveys.metrics import Nps, campaigns_with_nps, nps, nps_from_row
from surveys.models import NpsBucket, Response, nps_bucket
from surveys.services import response_record
from tests.factories import CampaignFactory, InvitationFactory

pytestmark = pytest.mark.django_db


def answer(campaign, *scores):
    for score in scores:
        response_record(invitation=InvitationFactory(campaign=campaign), score=score)


@pytest.mark.parametrize(
    "score, bucket",
    [
        (0, NpsBucket.DETRACTOR),
        (6, NpsBucket.DETRACTOR),
        (7, NpsBucket.PASSIVE),
        (8, NpsBucket.PASSIVE),
        (9, NpsBucket.PROMOTER),
        (10, NpsBucket.PROMOTER),
    ],
)
def test_it_puts_a_score_in_its_nps_bucket(score, bucket):
    assert nps_bucket(score) == bucket


def test_it_counts_the_boundary_scores_in_their_buckets_in_sql():
    campaign = CampaignFactory()
    answer(campaign, 6, 7, 8, 9)

    result = nps(campaign=campaign)

    assert (result.detractors, result.passives, result.promoters) == (1, 2, 1)
    assert result.responses == 4
    for response in Response.objects.all():
        assert response.nps_bucket == nps_bucket(response.score)


def test_it_computes_nps_and_its_margin_of_error_on_a_worked_example():
    campaign = CampaignFactory()
    answer(campaign, 9, 10, 9, 10, 10, 7, 8, 7, 0, 6)

    result = nps(campaign=campaign)

    assert result == Nps(promoters=5, passives=3, detractors=2, responses=10)
    assert result.nps == 30.0  # 50 % promoters − 20 % detractors
    expected = 1.96 * 100 * math.sqrt((0.5 + 0.2 - 0.09) / 10)
    assert expected == pytest.approx(48.41, abs=0.01)
    assert result.margin_of_error == round(expected, 1) == 48.4
    assert result.as_dict() == {
        "nps": 30.0,
        "promoters": 5,
        "passives": 3,
        "detractors": 2,
        "responses": 10,
        "margin_of_error": 48.4,
    }


def test_it_spans_minus_100_to_100():
    detractors, promoters = CampaignFactory(), CampaignFactory()
    answer(detractors, 0, 3, 6)
    answer(promoters, 9, 10)

    assert nps(campaign=detractors).nps == -100.0
    assert nps(campaign=promoters).nps == 100.0


def test_it_gives_no_nps_without_responses():
    result = nps(campaign=CampaignFactory())

    assert result.responses == 0
    assert result.nps is None
    assert result.margin_of_error is None
    assert nps().nps is None


def test_it_counts_only_the_campaign_asked_for():
    mine, other = CampaignFactory(), CampaignFactory()
    answer(mine, 10, 0)
    answer(other, 9, 9, 9)

    assert nps(campaign=mine).responses == 2
    assert nps(campaign=mine).nps == 0.0
    assert nps(campaign=other.pk).nps == 100.0
    assert nps().responses == 5


def test_it_counts_the_given_responses():
    campaign = CampaignFactory()
    answer(campaign, 10, 2, 8)

    result = nps(responses=Response.objects.filter(score__gte=8))

    assert (result.promoters, result.passives, result.detractors) == (1, 1, 0)


def test_it_counts_an_answer_changed_once():
    campaign = CampaignFactory()
    invitation = InvitationFactory(campaign=campaign)
    response_record(invitation=invitation, score=2)
    response_record(invitation=invitation, score=10)

    assert nps(campaign=campaign) == Nps(
        promoters=1, passives=0, detractors=0, responses=1
    )


def test_it_annotates_each_campaign_with_the_same_nps_as_nps(django_assert_num_queries):
    first, second, silent = CampaignFactory(), CampaignFactory(), CampaignFactory()
    answer(first, 9, 10, 9, 10, 10, 7, 8, 7, 0, 6)
    answer(second, 3, 9)
    InvitationFactory(campaign=second)  # invited, not answered
    InvitationFactory(campaign=silent)

    with django_assert_num_queries(1):
        rows = {c.pk: c for c in campaigns_with_nps()}

    for campaign in (first, second, silent):
        assert nps_from_row(rows[campaign.pk]) == nps(campaign=campaign)
    assert [rows[c.pk].invited for c in (first, second, silent)] == [10, 3, 1]
    assert nps_from_row(rows[first.pk]).nps == 30.0
    assert nps_from_row(rows[silent.pk]).nps is None


def test_it_counts_nps_in_one_query(django_assert_num_queries):
    campaign = CampaignFactory()
    answer(campaign, 1, 5, 7, 9, 10)

    with django_assert_num_queries(1):
        result = nps(campaign=campaign)

    assert result.responses == 5
