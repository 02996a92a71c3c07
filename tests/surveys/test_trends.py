"""Trends, splits, response rate, distribution and period comparisons, against
values worked out by hand."""

import math
from datetime import UTC, datetime, timedelta

import pytest

from surveys import metrics
from surveys.models import Invitation, InvitationStatus, Response
from surveys.services import response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
    property_segment,
)

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 1, 5, 10, tzinfo=UTC)  # a Monday: weeks start on it
NEXT_MONDAY = MONDAY + timedelta(days=7)


def answered(campaign, score, when, **customer):
    """Records an answer through the real service, then moves it (and its
    invitation's sending) to `when`."""
    response = response_record(
        invitation=InvitationFactory(
            campaign=campaign, customer=CustomerFactory(**customer)
        ),
        score=score,
    )
    Response.objects.filter(pk=response.pk).update(created_at=when)
    Invitation.objects.filter(pk=response.invitation_id).update(
        sent_at=when - timedelta(hours=1)
    )
    return response


def delivered(campaign, when, *, status=InvitationStatus.SENT, **customer):
    return InvitationFactory(
        campaign=campaign,
        customer=CustomerFactory(**customer),
        status=status,
        sent_at=when,
    )


def test_it_counts_the_nps_of_each_week_with_its_margin_of_error():
    campaign = CampaignFactory()
    for score in (10, 9, 0, 7):
        answered(campaign, score, MONDAY)
    for score in (10, 10):
        answered(campaign, score, NEXT_MONDAY + timedelta(days=6))

    figure = metrics.trend("nps", interval="week")

    assert [p.period.isoformat() for p in figure.points] == ["2026-01-05", "2026-01-12"]
    first, second = (p.metric for p in figure.points)
    # (2 − 1) / 4 = 25; p = .5, d = .25: 1.96 · 100 · √((.75 − .0625) / 4) = 81.3
    assert (first.score, first.responses, first.margin_of_error) == (25.0, 4, 81.3)
    # All promoters: no variance, no margin.
    assert (second.score, second.responses, second.margin_of_error) == (100.0, 2, 0.0)
    assert figure.series == [{"key": "", "label": ""}]


def test_it_counts_the_csat_of_each_month_within_the_period():
    campaign = CampaignFactory(survey=SurveyFactory(kind="csat"))
    answered(campaign, 5, datetime(2026, 1, 31, tzinfo=UTC))
    answered(campaign, 2, datetime(2026, 1, 2, tzinfo=UTC))
    answered(campaign, 4, datetime(2026, 2, 1, tzinfo=UTC))
    answered(campaign, 1, datetime(2025, 12, 31, tzinfo=UTC))  # before since

    figure = metrics.trend(
        "csat", interval="month", since=datetime(2026, 1, 1, tzinfo=UTC)
    )

    assert [(p.period.isoformat(), p.metric.score) for p in figure.points] == [
        ("2026-01-01", 50.0),
        ("2026-02-01", 100.0),
    ]
    # 1.96 · 100 · √(.25 / 2) = 69.3
    assert figure.points[0].metric.margin_of_error == 69.3


def test_it_splits_a_trend_by_a_property_largest_first():
    campaign = CampaignFactory()
    answered(campaign, 10, MONDAY, properties={"plan": "pro"})
    answered(campaign, 0, MONDAY, properties={"plan": "basic"})
    answered(campaign, 9, MONDAY, properties={"plan": "basic"})
    answered(campaign, 8, MONDAY, properties={})

    figure = metrics.trend("nps", by="plan")

    # Without the property last among equals.
    assert [s["key"] for s in figure.series] == ["basic", "pro", ""]
    assert figure.series[2]["label"] == "(none)"
    scores = {p.series: (p.metric.score, p.metric.responses) for p in figure.points}
    assert scores == {"basic": (0.0, 2), "pro": (100.0, 1), "": (0.0, 1)}


def test_it_splits_by_locale_and_keeps_the_largest_series(monkeypatch):
    monkeypatch.setattr(metrics, "MAX_SERIES", 1)
    campaign = CampaignFactory()
    answered(campaign, 10, MONDAY, locale="ko")
    answered(campaign, 10, MONDAY, locale="ko")
    answered(campaign, 0, MONDAY, locale="en")

    figure = metrics.trend("nps", by="locale")

    assert figure.series == [{"key": "ko", "label": "ko"}]
    assert [(p.series, p.metric.responses) for p in figure.points] == [("ko", 2)]


def test_it_puts_segments_side_by_side_in_one_query(django_assert_num_queries):
    campaign = CampaignFactory()
    answered(campaign, 10, MONDAY, properties={"plan": "pro"})
    answered(campaign, 0, MONDAY, properties={"plan": "basic"})
    answered(campaign, 6, MONDAY, properties={"plan": "basic"})
    pro, basic = property_segment("plan", "pro"), property_segment("plan", "basic")

    with django_assert_num_queries(1):
        figure = metrics.trend("nps", by="segment", segments=[pro, basic])

    assert [s["label"] for s in figure.series] == [pro.name, basic.name]
    scores = {p.series: (p.metric.score, p.metric.responses) for p in figure.points}
    assert scores == {str(pro.pk): (100.0, 1), str(basic.pk): (-100.0, 2)}


def test_it_keeps_one_segments_customers():
    campaign = CampaignFactory()
    answered(campaign, 10, MONDAY, properties={"plan": "pro"})
    answered(campaign, 0, MONDAY, properties={"plan": "basic"})

    figure = metrics.trend("nps", segment=property_segment("plan", "pro"))

    assert [(p.metric.score, p.metric.responses) for p in figure.points] == [(100.0, 1)]


def test_it_counts_the_response_rate_of_the_invitations_delivered_each_week():
    campaign = CampaignFactory()
    answered(campaign, 9, MONDAY)
    delivered(campaign, MONDAY)
    delivered(campaign, MONDAY + timedelta(days=1))
    delivered(campaign, MONDAY, status=InvitationStatus.BOUNCED)  # not delivered
    answered(campaign, 3, NEXT_MONDAY)
    CampaignFactory(survey=SurveyFactory(kind="csat"))  # another kind's: none

    figure = metrics.response_rate_trend("nps")

    assert [
        (p.period.isoformat(), p.delivered, p.responses, p.response_rate)
        for p in figure.points
    ] == [("2026-01-05", 3, 1, 33.3), ("2026-01-12", 1, 1, 100.0)]


def test_it_counts_every_score_of_the_scale_in_the_distribution():
    campaign = CampaignFactory(survey=SurveyFactory(kind="ces"))
    for score in (1, 7, 7, 4):
        answered(campaign, score, MONDAY)

    figure = metrics.distribution("ces")

    assert [(row["score"], row["responses"]) for row in figure.points] == [
        (1, 1),
        (2, 0),
        (3, 0),
        (4, 1),
        (5, 0),
        (6, 0),
        (7, 2),
    ]


def test_it_refuses_to_split_by_something_that_is_no_property_name():
    with pytest.raises(Exception, match="not something to split by"):
        metrics.by_clean("plan; drop table")
    assert metrics.by_clean("region") == "region"


# Comparing two periods


A = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC))
B = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))


def test_it_compares_two_nps_with_a_z_test_on_their_difference(
    django_assert_num_queries,
):
    campaign = CampaignFactory()
    for score in (10, 10, 9, 9, 10, 7, 8, 7, 0, 6):  # 5 P, 3 passive, 2 D: 30
        answered(campaign, score, A[0] + timedelta(days=3))
    for score in (10, 10, 9, 9, 10, 10, 9, 9, 8, 2):  # 8 P, 1 passive, 1 D: 70
        answered(campaign, score, B[0] + timedelta(days=3))
    answered(campaign, 0, B[1])  # after b

    # One aggregate over both periods (after folding the daily rollups it reads).
    with django_assert_num_queries(2):
        result = metrics.compare("nps", a=A, b=B)

    assert (result.a.score, result.b.score, result.difference) == (30.0, 70.0, 40.0)
    # Variances .5 + .2 − .3² = .61 and .8 + .1 − .7² = .41;
    # z = .4 / √(.61/10 + .41/10) = 1.25245, p = erfc(z / √2) = 0.21041
    assert result.test == "nps-z"
    assert result.statistic == pytest.approx(1.252448, abs=1e-5)
    assert result.p_value == pytest.approx(0.210406, abs=1e-5)
    assert result.significant is False


def test_it_compares_two_csat_with_a_two_proportion_z_test():
    campaign = CampaignFactory(survey=SurveyFactory(kind="csat"))
    for n in range(40):
        answered(campaign, 5 if n < 20 else 2, A[0] + timedelta(hours=n))
        answered(campaign, 4 if n < 30 else 3, B[0] + timedelta(hours=n))

    result = metrics.compare("csat", a=A, b=B)

    # pooled p = 50/80 = .625; z = .25 / √(.625 · .375 · (2/40)) = 2.3094
    assert result.test == "two-proportion-z"
    assert result.statistic == pytest.approx(2.309401, abs=1e-5)
    assert result.p_value == pytest.approx(0.020921, abs=1e-5)
    assert result.significant is True
    assert result.difference == 25.0


def test_it_compares_two_ces_means_with_welchs_t_test():
    campaign = CampaignFactory(survey=SurveyFactory(kind="ces"))
    for score in (1, 2, 3, 4, 5):
        answered(campaign, score, A[0] + timedelta(days=1))
    for score in (4, 5, 6, 7, 7, 7):
        answered(campaign, score, B[0] + timedelta(days=1))

    result = metrics.compare("ces", a=A, b=B)

    # means 3 and 6, variances 2.5 and 1.6: t = 3 / √(.5 + .26667) = 3.42624,
    # df = .76667² / (.5²/4 + .26667²/5) = 7.6611
    assert result.test == "welch-t"
    assert result.statistic == pytest.approx(3.426241, abs=1e-5)
    assert result.df == pytest.approx(7.6611, abs=1e-3)
    assert result.p_value == pytest.approx(0.00969, abs=2e-4)
    assert result.significant is True
    assert result.difference == 3.0


@pytest.mark.parametrize(
    "t, df, p",
    # Student's t: the 97.5 % quantiles of the tables, and the Cauchy case.
    [(2.262157, 9, 0.05), (1.959964, 1e9, 0.05), (1.0, 1, 0.5), (0.0, 5, 1.0)],
)
def test_it_computes_students_two_sided_p_value(t, df, p):
    assert metrics._student_p(t, df) == pytest.approx(p, abs=1e-6)


def test_it_gives_no_test_below_two_responses_a_side():
    campaign = CampaignFactory()
    answered(campaign, 10, A[0])

    result = metrics.compare("nps", a=A, b=B)

    assert (result.statistic, result.p_value, result.significant) == (
        None,
        None,
        False,
    )
    assert result.b.responses == 0
    assert math.isclose(result.a.score, 100.0)
