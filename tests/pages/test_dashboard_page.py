"""/dashboard/: each kind's figures, the filters, their 400s, constant queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.models import Segment
from surveys.models import Response
from surveys.services import response_record
from tests.factories import CampaignFactory, InvitationFactory, agent, property_segment

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client):
    client.force_login(agent())
    return client


def figure(html: str, card: str) -> str:
    part = html[html.index(f'id="{card}"') :]
    return part[part.index('<div class="figure">') + 20 : part.index("</div>")]


def test_it_shows_the_nps_of_the_last_twelve_weeks_by_default(agent_client):
    for score in [10, 9, 8, 2]:
        response_record(invitation=InvitationFactory(), score=score)
    old = response_record(invitation=InvitationFactory(), score=0)
    Response.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=90)
    )

    r = agent_client.get("/dashboard/")

    html = r.content.decode()
    assert r.status_code == 200
    assert figure(html, "current") == "25.0"
    assert figure(html, "earlier") == "-100.0"
    assert figure(html, "change") == "+125.0"
    assert 'id="dashboard-data"' in html
    assert "<script>" not in html  # data by json_script, drawing by a static file


def test_it_shows_another_kind_and_says_which_test_it_uses(agent_client):
    for score in [5, 4, 1]:
        response_record(
            invitation=InvitationFactory(campaign__survey__kind="csat"), score=score
        )

    html = agent_client.get("/dashboard/?kind=csat").content.decode()

    assert figure(html, "current") == "66.7 %"
    assert "two-proportion z-test" in html


def test_it_keeps_one_campaign(agent_client):
    campaign = CampaignFactory()
    response_record(invitation=InvitationFactory(campaign=campaign), score=10)
    response_record(invitation=InvitationFactory(), score=0)

    html = agent_client.get(f"/dashboard/?campaign={campaign.pk}").content.decode()

    assert figure(html, "current") == "100.0"


@pytest.mark.parametrize(
    "query",
    [
        "kind=custom",
        "since=2026-13-01",
        "since=2026-02-01&until=2026-01-01",
        "since=2020-01-01&until=2026-01-01",
        "interval=day",
        "by=plan;drop",
        "segment=999999",
        "campaign=abc",
    ],
)
def test_it_answers_400_with_the_forms_message_for_bad_filters(agent_client, query):
    r = agent_client.get(f"/dashboard/?{query}")

    assert r.status_code == 400
    assert "errorlist" in r.content.decode()


def test_it_refuses_segments_side_by_side_with_one_segment(agent_client):
    segment = property_segment("plan", "pro")

    r = agent_client.get(f"/dashboard/?by=segment&segment={segment.pk}")

    assert r.status_code == 400


def test_it_renders_the_dashboard_in_constant_queries(
    agent_client, django_assert_num_queries, settings
):
    settings.THEMES_CACHE_SECONDS = 0  # the themes' comments read every time
    response_record(invitation=InvitationFactory(), score=3)
    # The session, the user, whether they are CX staff, the segments, the
    # campaigns; the trend, response rate, distribution and comparison (and, for
    # what reads the daily rollups, one fold of them first); the detractors' and
    # the promoters' comments; whether the navigation offers the reports (an
    # agent: no).
    with django_assert_num_queries(13):
        agent_client.get("/dashboard/")
    with django_assert_num_queries(13):
        agent_client.get("/dashboard/?by=plan")
    for kind in ("csat", "ces", "nps"):
        response_record(
            invitation=InvitationFactory(campaign__survey__kind=kind), score=3
        )
    property_segment("plan", "pro")
    property_segment("plan", "basic")
    with django_assert_num_queries(13):
        agent_client.get("/dashboard/?by=segment")
    assert Segment.objects.count() == 2


def test_it_lists_the_themes_of_detractors_and_promoters_with_links(agent_client):
    for comment in ["Delivery was late", "Late delivery again", "배송이 늦었어요"]:
        response_record(invitation=InvitationFactory(), score=2, comment=comment)
    response_record(invitation=InvitationFactory(), score=10, comment="Friendly staff")

    html = agent_client.get("/dashboard/").content.decode()

    detractors = html[html.index('id="themes-detractor"') :]
    detractors = detractors[: detractors.index("</div>")]
    assert "delivery" in detractors
    assert "term=delivery" in detractors and "bucket=detractor" in detractors
    promoters = html[html.index('id="themes-promoter"') :]
    assert "staff" in promoters[: promoters.index("</div>")]
