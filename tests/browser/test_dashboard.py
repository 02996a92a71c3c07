"""
The dashboard in Chromium, as CX staff: the charts drawn by Chart.js from the
page's data (no inline script), their tables, English and Korean, a 360 px phone
and a desktop, through axe-core, with screenshots under var/screenshots/.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from surveys.models import Invitation, Response
from surveys.themes import korean_analyser
from tests.api.helpers import answer
from tests.factories import CampaignFactory, CustomerFactory, UserFactory

from .pages import check_page, session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def answers(db):
    # Kiwi's model loads in seconds once per process: not in the page's 10 s.
    korean_analyser()
    campaign = CampaignFactory(name="Onboarding NPS")
    now = timezone.now()
    scores = [10, 9, 9, 8, 7, 6, 3, 10, 9, 0, 10, 10, 8, 9, 5, 10]
    comments = ["Delivery was late", "배송이 늦었어요", "Friendly support staff", ""]
    for n, score in enumerate(scores):
        response = answer(
            score,
            comments[n % 4],
            campaign=campaign,
            customer=CustomerFactory(properties={"plan": "pro" if n % 2 else "basic"}),
        )
        when = now - timedelta(days=3 + 6 * n)
        Response.objects.filter(pk=response.pk).update(created_at=when)
        Invitation.objects.filter(pk=response.invitation_id).update(sent_at=when)
    return campaign


def test_it_draws_the_dashboard_on_a_phone_and_a_desktop(
    live_server, page, locale, answers
):
    session_for(page, live_server, UserFactory(is_staff=True))
    page.goto(f"{live_server.url}/dashboard/")

    assert page.locator("h1").inner_text() == (
        "Dashboard" if locale == "en" else "대시보드"
    )
    # Chart.js drew into each canvas (a blank canvas has no chart attached).
    for chart in ("trend", "rate", "distribution"):
        assert page.evaluate(
            f"Chart.getChart(document.getElementById('{chart}')) !== undefined"
        )
    page.locator("#trend-title + .chart + details summary").click()
    assert page.locator("#trend-table tbody tr").count() >= 10
    assert page.locator("#themes-detractor li").count() >= 1
    check_page(page, f"dashboard-{locale}-{page.size}")

    page.select_option("#id_by", "plan")
    page.click("#dashboard-filters button[type=submit]")
    page.wait_for_url("**/dashboard/?*")
    datasets = page.evaluate(
        "Chart.getChart(document.getElementById('trend')).data.datasets.length"
    )
    assert datasets == 2
    check_page(page, f"dashboard-by-plan-{locale}-{page.size}")
