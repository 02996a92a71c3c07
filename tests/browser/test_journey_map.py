"""
The journey map in Chromium, as a CX agent: English and Korean, on a 360 px phone
and a desktop, through axe-core, with screenshots under var/screenshots/.
"""

import pytest

from tests.factories import agent
from tests.journeys.test_map import example  # noqa: F401 (a fixture)

from .pages import check_page, session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_the_journey_map_on_a_phone_and_a_desktop(
    live_server,
    page,
    locale,
    example,  # noqa: F811
):
    session_for(page, live_server, agent())
    page.goto(f"{live_server.url}/followups/")
    page.click("header nav a[href='/journeys/']")
    page.wait_for_url("**/journeys/")
    check_page(page, f"journeys-{locale}-{page.size}")
    page.click(f"a[href='/journeys/{example['journey'].pk}/']")
    page.wait_for_url("**/journeys/*/")
    # The example's period: the last 10 days against the 10 before.
    page.fill("#id_since", example["since"].isoformat())
    page.fill("#id_until", example["until"].isoformat())
    page.click("#map-filters button[type=submit]")
    page.wait_for_url("**/journeys/*/?*")

    assert page.locator("h1").inner_text() == (
        "Journey map: Subscriber" if locale == "en" else "고객 여정 지도: Subscriber"
    )
    checkout = page.locator(f"#touchpoint-{example['checkout'].pk}")
    assert checkout.locator(".score .value").inner_text() == "0.0"
    assert checkout.locator(".change").inner_text() == "−33.3"
    check_page(page, f"journey-map-{locale}-{page.size}")

    # A channel with only the support call.
    page.select_option("#id_channel", "phone")
    page.click("#map-filters button[type=submit]")
    page.wait_for_url("**channel=phone*")
    assert page.locator(".touchpoint").count() == 1
    check_page(page, f"journey-map-phone-channel-{locale}-{page.size}")
