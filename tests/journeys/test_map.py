"""The live journey map's figures, checked against numbers counted by hand."""

import datetime as dt

import pytest
from django.utils import timezone

from cxm.customers.models import Interaction
from cxm.followups.models import FollowUp
from cxm.followups.services import followup_resolve
from journeys.models import Emotion, Touchpoint
from journeys.selectors import journey_map, measured_emotion
from journeys.services import journey_create
from surveys.metrics import Csat, Nps
from surveys.models import Response
from surveys.services import response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
    agent,
    property_segment,
)

pytestmark = pytest.mark.django_db


def answer(campaign, score, *, days_ago=0, customer=None):
    response = response_record(
        invitation=InvitationFactory(
            campaign=campaign, customer=customer or CustomerFactory()
        ),
        score=score,
    )
    when = timezone.now() - dt.timedelta(days=days_ago)
    Response.objects.filter(pk=response.pk).update(created_at=when)
    return response


def interact(customer, kind, *, days_ago=0, channel="web"):
    Interaction.objects.create(
        customer=customer,
        kind=kind,
        channel=channel,
        occurred_at=timezone.now() - dt.timedelta(days=days_ago),
    )


@pytest.fixture
def example():
    """
    A journey of the five classic stages: an ad (awareness), the checkout
    (purchase, measured by an NPS campaign) and a support call (use, by CSAT).
    """
    journey = journey_create(name="Subscriber")
    awareness, consideration, purchase, use, loyalty = journey.stages.all()
    nps = CampaignFactory(survey=SurveyFactory(kind="nps"))
    csat = CampaignFactory(survey=SurveyFactory(kind="csat", name="CSAT"))
    ad = Touchpoint.objects.create(
        stage=awareness, name="Ad", channel="web", interaction_kind="ad_view"
    )
    checkout = Touchpoint.objects.create(
        stage=purchase,
        name="Checkout",
        channel="web",
        interaction_kind="purchase",
        expected_emotion=Emotion.POSITIVE,
    )
    checkout.campaigns.add(nps)
    support = Touchpoint.objects.create(
        stage=use,
        name="Support call",
        channel="phone",
        interaction_kind="support_call",
        expected_emotion=Emotion.NEGATIVE,
    )
    support.campaigns.add(csat)
    # This period (the last 10 days): NPS 2 promoters, 1 passive, 2 detractors.
    for score in (10, 9, 7, 3, 0):
        answer(nps, score, days_ago=1)
    # The 10 days before: 2 promoters, 1 detractor.
    for score in (10, 10, 6):
        answer(nps, score, days_ago=15)
    # Long before: counted nowhere.
    answer(nps, 0, days_ago=40)
    for score in (5, 4, 2):
        answer(csat, score, days_ago=2)

    a, b, c, d, e = (
        CustomerFactory(properties={"plan": plan})
        for plan in ("pro", "pro", "free", "free", "pro")
    )
    for customer in (a, b, c):
        interact(customer, "ad_view", days_ago=3)
    for customer in (a, b, d):
        interact(customer, "purchase", days_ago=2)
    interact(a, "support_call", days_ago=1, channel="phone")
    interact(a, "support_call", days_ago=1, channel="phone")  # counted once
    interact(e, "ad_view", days_ago=30)  # before the period
    today = timezone.localdate()
    return {
        "journey": journey,
        "ad": ad,
        "checkout": checkout,
        "support": support,
        "nps": nps,
        "csat": csat,
        "since": today - dt.timedelta(days=9),
        "until": today,
    }


def the_map(example, **filters):
    return journey_map(
        journey=example["journey"],
        since=example["since"],
        until=example["until"],
        **filters,
    )


def figures_of(journey_map, touchpoint):
    return next(t for t in journey_map.touchpoints if t.touchpoint == touchpoint)


def test_it_scores_each_touchpoint_by_its_campaigns_kind(example):
    m = the_map(example)
    checkout = figures_of(m, example["checkout"])
    assert checkout.kind == "nps"
    assert checkout.metric == Nps(promoters=2, passives=1, detractors=2, responses=5)
    assert checkout.metric.score == 0.0
    assert checkout.previous == Nps(promoters=2, passives=0, detractors=1, responses=3)
    assert checkout.change == -33.3
    assert checkout.negative == 2
    support = figures_of(m, example["support"])
    assert support.kind == "csat"
    assert support.metric == Csat(satisfied=2, neutral=0, dissatisfied=1, responses=3)
    assert support.metric.score == 66.7
    assert support.change is None  # nothing to compare with
    ad = figures_of(m, example["ad"])
    assert ad.kind is None and ad.metric is None and ad.link is None


def test_it_counts_the_periods_followups(example):
    # The default rule opened one for each detractor; one is resolved since.
    opened = FollowUp.objects.filter(response__campaign=example["nps"])
    assert opened.count() == 4
    followup_resolve(
        followup=opened.get(response__score=3),
        actor=agent(),
        resolution="Refunded",
        root_cause="price",
    )

    checkout = figures_of(the_map(example), example["checkout"])
    assert checkout.followups_opened == 2
    assert checkout.followups_open == 1
    support = figures_of(the_map(example), example["support"])
    assert (support.followups_opened, support.followups_open) == (1, 1)


def test_it_draws_the_emotion_curve_on_one_scale(example):
    m = the_map(example)
    assert [
        (t.touchpoint.name, t.expected_emotion, t.measured_emotion) for t in m.curve
    ] == [
        ("Ad", 0, None),
        ("Checkout", 1, 0.0),
        ("Support call", -1, 0.67),
    ]


@pytest.mark.parametrize(
    "kind, metric, emotion",
    [
        ("nps", Nps(promoters=10, passives=0, detractors=0, responses=10), 2.0),
        ("nps", Nps(promoters=0, passives=0, detractors=4, responses=4), -2.0),
        ("nps", Nps(promoters=3, passives=0, detractors=1, responses=4), 1.0),
        ("csat", Csat(satisfied=1, neutral=0, dissatisfied=3, responses=4), -1.0),
    ],
)
def test_it_puts_scores_on_the_emotion_scale(kind, metric, emotion):
    assert measured_emotion(kind, metric) == emotion


def test_it_ranks_pain_points_by_score_then_detractors(example):
    m = the_map(example)
    assert [t.touchpoint.name for t in m.pain_points] == ["Checkout", "Support call"]


def test_it_counts_the_drop_off_between_stages(example):
    stages = the_map(example).stages
    assert [(s.stage.name, s.reached, s.reached_next) for s in stages] == [
        ("Awareness", 3, None),  # consideration has no touchpoint with a kind
        ("Consideration", 0, 0),
        ("Purchase", 3, 1),
        ("Use", 1, None),
        ("Loyalty and advocacy", 0, None),
    ]
    purchase = stages[2]
    assert (purchase.next_share, purchase.drop_off) == (33.3, 66.7)
    assert stages[1].next_share is None


def test_it_narrows_to_a_segment(example):
    pro = property_segment("plan", "pro")
    stages = the_map(example, segment=pro).stages
    assert [(s.reached, s.reached_next) for s in stages][2] == (2, 1)
    assert stages[0].reached == 2
    # Nobody who answered is on the pro plan.
    checkout = figures_of(the_map(example, segment=pro), example["checkout"])
    assert checkout.metric is None and checkout.followups_open == 0


def test_it_narrows_to_a_channel(example):
    m = the_map(example, channel="phone")
    assert [t.touchpoint.name for t in m.touchpoints] == ["Support call"]
    assert [s.reached for s in m.stages] == [0, 0, 0, 1, 0]


def test_it_runs_a_fixed_number_of_queries(example, django_assert_num_queries):
    pro = property_segment("plan", "pro")
    with django_assert_num_queries(5):
        the_map(example, segment=pro, themes=0)
    for score in range(11):
        answer(example["nps"], score, days_ago=1)
        answer(example["csat"], 1 + score % 5, days_ago=20)
    with django_assert_num_queries(5):
        m = the_map(example, themes=0)
    assert figures_of(m, example["checkout"]).metric.responses == 16


def test_it_shows_each_touchpoints_top_comment_themes(
    example, django_assert_num_queries
):
    for comment in ("Slow delivery", "Delivery was slow again", "Great price"):
        response_record(
            invitation=InvitationFactory(campaign=example["nps"]),
            score=3,
            comment=comment,
        )
    # One more query for each of the two touchpoints with answers; none once cached.
    with django_assert_num_queries(7):
        checkout = figures_of(the_map(example), example["checkout"])
    assert [(t["term"], t["count"]) for t in checkout.themes][:2] == [
        ("delivery", 2),
        ("slow", 2),
    ] or [(t["term"], t["count"]) for t in checkout.themes][:2] == [
        ("slow", 2),
        ("delivery", 2),
    ]
    url = checkout.themes[0]["url"]
    assert url.startswith("/responses/?campaign=") and "term=" in url
    with django_assert_num_queries(5):
        the_map(example)


def test_it_links_every_figure_to_the_responses_behind_it(example):
    checkout = figures_of(the_map(example), example["checkout"])
    nps, since, until = example["nps"].pk, example["since"], example["until"]
    assert checkout.link == (
        f"/responses/?campaign={nps}&kind=nps&since={since}&until={until}"
    )
    assert checkout.negative_link == (
        f"/responses/?campaign={nps}&kind=nps&bucket=detractor"
        f"&since={since}&until={until}"
    )
