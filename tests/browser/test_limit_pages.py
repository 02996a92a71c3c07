"""
The pages of a limit reached, in Chromium: too many wrong links, one unsubscribe link
posted too often, a log-in locked out. Each in English and Korean, on a 360 px phone
and a desktop, through axe-core, with screenshots under var/screenshots/.
"""

import pytest

from cxm.customers.models import Customer
from tests.factories import InvitationFactory, UserFactory

from .pages import check_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_tells_a_visitor_with_too_many_wrong_links_to_wait(
    live_server, settings, page, locale
):
    settings.TOKEN_MISS_RATE = "1/h"
    assert page.goto(f"{live_server.url}/s/guess-1/").status == 404

    r = page.goto(f"{live_server.url}/s/guess-2/")

    assert r.status == 429
    assert r.headers["content-language"] == locale
    check_page(page, f"too-many-links-{locale}-{page.size}")


def test_it_tells_a_customer_who_posts_one_unsubscribe_link_too_often(
    live_server, settings, page, locale
):
    settings.UNSUBSCRIBE_RATE = "1/h"
    invitation = InvitationFactory(customer__locale=locale)
    url = f"{live_server.url}/s/{invitation.token}/unsubscribe/"
    page.goto(url)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert Customer.objects.get(pk=invitation.customer_id).unsubscribed_at

    page.goto(url)
    with page.expect_navigation() as navigation:
        page.click("button[type=submit]")

    assert navigation.value.status == 429
    check_page(page, f"too-many-unsubscribes-{locale}-{page.size}")


def test_it_tells_a_staff_member_their_log_in_is_paused(
    live_server, settings, page, locale
):
    settings.AXES_FAILURE_LIMIT = 2
    user = UserFactory(is_staff=True)
    for _ in range(2):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", "not the password")
        with page.expect_navigation() as navigation:
            page.click("form button[type=submit], form input[type=submit]")

    assert navigation.value.status == 429
    assert page.locator("h1").inner_text() == (
        "Log-in paused" if locale == "en" else "로그인 일시 중지"
    )
    check_page(page, f"locked-{locale}-{page.size}")
