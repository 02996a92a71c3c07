"""NPS, CSAT and CES, counted by the database: buckets, formulas, margins of error."""

import math
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from surveys import metrics
from surveys.kinds import Bucket, Tone, is_negative, score_bucket
from surveys.metrics import Csat, Nps
from surveys.models import Response
from surveys.services import response_record
from tests.factories import CampaignFactory, CustomerFactory, InvitationFactory

pytestmark = pytest.mark.django_db


def answer(campaign, *scores, **customer):
    for score in scores:
        response_record(
            invitation=InvitationFactory(
                campaign=campaign, customer=CustomerFactory(**customer)
            ),
            score=score,
        )


# Buckets: one function for every kind


@pytest.mark.parametrize(
    "kind, score, bucket, tone",
    [
        ("nps", 0, Bucket.DETRACTOR, Tone.NEGATIVE),
        ("nps", 6, Bucket.DETRACTOR, Tone.NEGATIVE),
        ("nps", 7, Bucket.PASSIVE, Tone.NEUTRAL),
        ("nps", 8, Bucket.PASSIVE, Tone.NEUTRAL),
        ("nps", 9, Bucket.PROMOTER, Tone.POSITIVE),
        ("nps", 10, Bucket.PROMOTER, Tone.POSITIVE),
        ("csat", 1, Bucket.DISSATISFIED, Tone.NEGATIVE),
        ("csat", 2, Bucket.DISSATISFIED, Tone.NEGATIVE),
        ("csat", 3, Bucket.NEUTRAL, Tone.NEUTRAL),
        ("csat", 4, Bucket.SATISFIED, Tone.POSITIVE),
        ("csat", 5, Bucket.SATISFIED, Tone.POSITIVE),
        ("ces", 1, Bucket.HARD, Tone.NEGATIVE),
        ("ces", 3, Bucket.HARD, Tone.NEGATIVE),
        ("ces", 4, Bucket.NEUTRAL, Tone.NEUTRAL),
        ("ces", 5, Bucket.EASY, Tone.POSITIVE),
        ("ces", 7, Bucket.EASY, Tone.POSITIVE),
    ],
)
def test_it_puts_a_score_in_its_kinds_bucket(kind, score, bucket, tone):
    assert score_bucket(kind, score).bucket == bucket
    assert score_bucket(kind, score).tone == tone
    assert is_negative(kind, score) == (tone == Tone.NEGATIVE)


@pytest.mark.parametrize("kind, score", [("nps", 11), ("csat", 0), ("ces", 8)])
def test_it_refuses_to_bucket_a_score_off_the_scale(kind, score):
    with pytest.raises(ValueError):
        score_bucket(kind, score)


def test_it_never_calls_a_custom_surveys_answer_negative():
    assert is_negative("custom", 0) is False
    assert is_negative("nps", None) is False


def test_it_counts_the_boundary_scores_in_their_buckets_in_sql():
    campaign = CampaignFactory()
    answer(campaign, 6, 7, 8, 9)

    result = metrics.nps(campaign=campaign)

    assert (result.detractors, result.passives, result.promoters) == (1, 2, 1)
    assert result.responses == 4
    for response in Response.objects.select_related("survey"):
        assert response.bucket == score_bucket("nps", response.score).bucket


# NPS


def test_it_computes_nps_and_its_margin_of_error_on_a_worked_example():
    campaign = CampaignFactory()
    answer(campaign, 9, 10, 9, 10, 10, 7, 8, 7, 0, 6)

    result = metrics.nps(campaign=campaign)

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


def test_it_gives_the_textbook_nps_margin_for_a_hundred_answers():
    # 60 promoters, 25 passives, 15 detractors: NPS 45; the variance of the
    # +1/0/−1 variable is 0.75 − 0.45² = 0.5475, so ± 1.96 · √(0.5475/100) = 14.5.
    result = Nps(promoters=60, passives=25, detractors=15, responses=100)
    assert (result.nps, result.margin_of_error) == (45.0, 14.5)


def test_it_spans_minus_100_to_100():
    detractors, promoters = CampaignFactory(), CampaignFactory()
    answer(detractors, 0, 3, 6)
    answer(promoters, 9, 10)

    assert metrics.nps(campaign=detractors).nps == -100.0
    assert metrics.nps(campaign=promoters).nps == 100.0


def test_it_gives_no_nps_without_responses():
    result = metrics.nps(campaign=CampaignFactory())

    assert result.responses == 0
    assert result.nps is None
    assert result.margin_of_error is None
    assert metrics.nps().nps is None


def test_it_counts_only_the_campaign_asked_for():
    mine, other = CampaignFactory(), CampaignFactory()
    answer(mine, 10, 0)
    answer(other, 9, 9, 9)

    assert metrics.nps(campaign=mine).responses == 2
    assert metrics.nps(campaign=mine).nps == 0.0
    assert metrics.nps(campaign=other).nps == 100.0
    assert metrics.nps().responses == 5


def test_it_counts_an_answer_changed_once():
    campaign = CampaignFactory()
    invitation = InvitationFactory(campaign=campaign)
    response_record(invitation=invitation, score=2)
    response_record(invitation=invitation, score=10)

    assert metrics.nps(campaign=campaign) == Nps(
        promoters=1, passives=0, detractors=0, responses=1
    )


def test_it_counts_nps_in_one_query_on_the_response_table(
    django_assert_num_queries,
):
    campaign = CampaignFactory()
    answer(campaign, 1, 5, 7, 9, 10)

    with django_assert_num_queries(1) as queries:
        result = metrics.nps(campaign=campaign)

    assert result.responses == 5
    sql = queries.captured_queries[0]["sql"]
    assert 'FROM "surveys_response"' in sql
    assert "JOIN" not in sql  # one scan of one table


# CSAT


def test_it_computes_csat_and_its_margin_of_error_on_a_worked_example():
    campaign = CampaignFactory(survey__kind="csat")
    answer(campaign, 5, 4, 4, 3, 1, 5, 2, 4)

    result = metrics.csat(campaign=campaign)

    # 5 of 8 answered 4–5: 62.5 %; ± 1.96 · √(0.625 · 0.375 / 8) = 33.5 points.
    assert result == Csat(satisfied=5, neutral=1, dissatisfied=2, responses=8)
    assert result.score == 62.5
    assert result.margin_of_error == 33.5
    assert result.as_dict() == {
        "csat": 62.5,
        "satisfied": 5,
        "neutral": 1,
        "dissatisfied": 2,
        "responses": 8,
        "margin_of_error": 33.5,
    }


def test_it_gives_the_textbook_csat_margin_for_two_hundred_answers():
    # 150 of 200 satisfied: 75 % ± 1.96 · √(0.75 · 0.25 / 200) = 6.0 points.
    result = Csat(satisfied=150, neutral=30, dissatisfied=20, responses=200)
    assert (result.score, result.margin_of_error) == (75.0, 6.0)


# CES


def test_it_computes_ces_its_mean_margin_and_easy_share_on_a_worked_example():
    campaign = CampaignFactory(survey__kind="ces")
    answer(campaign, 7, 6, 5, 5, 4, 3, 2, 6, 7, 5)

    result = metrics.ces(campaign=campaign)

    # Mean 5.0; sample s = √(24/9) = 1.633; ± 1.96 · 1.633 / √10 = 1.01.
    # 7 of 10 answered 5–7: 70 % ± 1.96 · √(0.7 · 0.3 / 10) = 28.4 points.
    assert (result.easy, result.neutral, result.hard, result.responses) == (7, 1, 2, 10)
    assert result.score == 5.0
    assert result.margin_of_error == 1.01
    assert result.easy_share == 70.0
    assert result.as_dict()["easy_share_margin_of_error"] == 28.4


def test_it_gives_no_ces_margin_below_two_answers():
    campaign = CampaignFactory(survey__kind="ces")
    answer(campaign, 6)

    result = metrics.ces(campaign=campaign)

    assert (result.score, result.margin_of_error) == (6.0, None)


# Filters: campaign, survey, period, customer property; never another kind


def test_it_counts_each_kind_only_over_its_own_surveys():
    answer(CampaignFactory(), 0, 10)
    answer(CampaignFactory(survey__kind="csat"), 5, 5, 1)
    answer(CampaignFactory(survey__kind="ces"), 7)

    assert metrics.nps().responses == 2
    assert metrics.csat().responses == 3
    assert metrics.ces().responses == 1


def test_it_refuses_a_campaign_of_another_kind():
    campaign = CampaignFactory(survey__kind="csat")

    with pytest.raises(ValidationError) as e:
        metrics.nps(campaign=campaign)

    assert "CSAT" in e.value.messages[0]


def test_it_filters_by_survey_period_and_customer_property():
    campaign = CampaignFactory()
    answer(campaign, 10, 10, properties={"plan": "pro"})
    answer(campaign, 0, properties={"plan": "free"})
    old = Response.objects.filter(score=0).get()
    Response.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    since = timezone.now() - timedelta(days=30)

    assert metrics.nps(survey=campaign.survey).responses == 3
    assert metrics.nps(since=since).nps == 100.0
    assert metrics.nps(until=since).nps == -100.0
    assert metrics.nps(properties={"plan": "free"}).responses == 1


# Several campaigns at once


def test_it_annotates_each_campaign_with_its_own_kinds_metric(
    django_assert_num_queries,
):
    nps_campaign = CampaignFactory()
    csat_campaign = CampaignFactory(survey__kind="csat")
    ces_campaign, silent = CampaignFactory(survey__kind="ces"), CampaignFactory()
    answer(nps_campaign, 9, 10, 9, 10, 10, 7, 8, 7, 0, 6)
    answer(csat_campaign, 5, 4, 2)
    answer(ces_campaign, 7, 3)
    InvitationFactory(campaign=csat_campaign)  # invited, not answered
    InvitationFactory(campaign=silent)

    with django_assert_num_queries(1):
        rows = {c.pk: c for c in metrics.campaigns_with_counts()}
        found = {pk: metrics.campaign_metric(c) for pk, c in rows.items()}

    assert found[nps_campaign.pk] == metrics.nps(campaign=nps_campaign)
    assert found[csat_campaign.pk] == metrics.csat(campaign=csat_campaign)
    assert found[ces_campaign.pk] == metrics.ces(campaign=ces_campaign)
    assert found[silent.pk].score is None
    assert [rows[c.pk].invited for c in (nps_campaign, csat_campaign, silent)] == [
        10,
        4,
        1,
    ]
    assert [
        metrics.campaign_responded(rows[c.pk]) for c in (csat_campaign, silent)
    ] == [
        3,
        0,
    ]


def test_it_gives_every_kind_with_answers_in_one_query(django_assert_num_queries):
    answer(CampaignFactory(), 10, 0, 8)
    answer(CampaignFactory(survey__kind="ces"), 7, 3)

    with django_assert_num_queries(1):
        found = metrics.metrics_by_kind()

    assert set(found) == {"nps", "ces"}
    assert found["nps"] == metrics.nps()
    assert found["ces"] == metrics.ces()
