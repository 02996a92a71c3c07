"""
The follow-up reports in Chromium, as a manager: English and Korean, on a 360 px
phone and a desktop, through axe-core, with screenshots under var/screenshots/.
"""

import pytest

from tests.followups.test_reports import example  # noqa: F401 (a fixture)

from .pages import check_page, session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_a_manager_the_reports_on_a_phone_and_a_desktop(
    live_server,
    page,
    locale,
    example,  # noqa: F811
):
    session_for(page, live_server, example["sora"])
    page.goto(f"{live_server.url}/followups/")
    page.click("header nav a[href='/followups/reports/']")
    page.wait_for_url("**/followups/reports/")

    assert page.locator("h1").inner_text() == (
        "Follow-up reports" if locale == "en" else "후속 조치 보고서"
    )
    assert page.locator("#first-contact-sla .figure").inner_text() == "66.7 %"
    assert page.locator("#recovery .figure").inner_text() == "50.0 %"
    check_page(page, f"followup-reports-{locale}-{page.size}")

    # A period with nothing in it, chosen in the form.
    page.fill("#id_since", "2001-01-01")
    page.fill("#id_until", "2001-01-31")
    page.click("#report-filters button[type=submit]")
    page.wait_for_url("**/followups/reports/?*")
    assert page.locator("#open .figure").inner_text() == "0"
    check_page(page, f"followup-reports-empty-{locale}-{page.size}")
