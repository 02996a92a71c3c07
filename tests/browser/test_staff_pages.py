"""
Every staff page, in Chromium, as the persona who uses it: at 360 px and on a
desktop, in English and Korean, through axe-core, with no sideways scroll, and a
screenshot under var/screenshots/staff-<page>-<locale>-<width>.png for a reviewer.
And the landing: a manager logs in to the dashboard, an agent to their own queue.

A new staff page joins the walk by one line in STAFF_PAGES (and, if its URL
names a row, that row in the `workspace` fixture's dict).
"""

from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from cxm.customers.services import interaction_record
from cxm.followups.models import FollowUp, Team
from cxm.followups.services import followup_log_contact, followup_resolve, team_save
from cxm.outbox.models import OutboxEmail
from journeys.services import journey_create
from surveys.services import response_record
from tests.factories import (
    CustomerFactory,
    InvitationFactory,
    UserFactory,
    agent,
    manager,
)

from .pages import axe_violations, broken_words, log_in, screenshot, session_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class StaffPage:
    """A page of the walk: its name, its URL (a format string over the
    `workspace` fixture's dict), who opens it, the status it answers with."""

    name: str
    url: str
    persona: str | None  # "staff", "manager", "agent", or None: not logged in
    status: int = 200


# Every non-admin page a person reads in the URLconf, customers' pages aside
# (tests/browser/test_answer_pages.py walks those). The API's Swagger UI is
# drf-spectacular's page, not ours.
STAFF_PAGES = [
    StaffPage("queue", "/followups/?status=any", "manager"),
    StaffPage("my-queue", "/followups/?owner={agent_id}", "agent"),
    StaffPage("followup", "/followups/{followup_id}/", "manager"),
    StaffPage("reports", "/followups/reports/", "manager"),
    StaffPage("dashboard", "/dashboard/", "manager"),
    StaffPage("outbox", "/outbox/", "staff"),
    StaffPage("outbox-email", "/outbox/{email_id}/", "staff"),
    StaffPage("preferences", "/preferences/", "agent"),
    StaffPage("403", "/outbox/", "agent", status=403),
    StaffPage("404", "/followups/999999999/", "manager", status=404),
    StaffPage("404-public", "/no/such/page/", None, status=404),
    StaffPage("login", "/accounts/login/", None),
    StaffPage("customer", "/customers/{customer_id}/", "agent"),
    StaffPage("responses", "/responses/", "manager"),
    StaffPage("journeys", "/journeys/", "manager"),
    StaffPage("journey", "/journeys/{journey_id}/", "agent"),
]


@pytest.fixture
def workspace() -> dict:
    """
    A team's workspace: a manager, an agent, a staff account; follow-ups in
    several states with long Korean and English comments; an email in the outbox.
    Returns the people and the ids the pages' URLs name.
    """
    boss = manager(username="boss")
    mina = agent(username="mina")
    staff = UserFactory(username="admin", is_staff=True)
    team = team_save(team=Team(name="Seoul", manager=boss), members=[mina])
    customer = CustomerFactory(name="김민지", email="minji@example.co.kr", locale="ko")
    followups = []
    for n, score in enumerate([0, 3, 6, 9]):
        invitation = InvitationFactory(
            customer=customer if n == 0 else CustomerFactory()
        )
        comment = (
            "배송이 너무 늦었고 고객센터는 전화를 받지 않았습니다. " * 3
            if n == 0
            else "Late again, and nobody called back about the refund."
        )
        response = response_record(invitation=invitation, score=score, comment=comment)
        followups.extend(FollowUp.objects.filter(response=response))
    FollowUp.objects.filter(pk__in=[f.pk for f in followups]).update(
        team=team, owner=mina
    )
    FollowUp.objects.filter(pk=followups[1].pk).update(
        due_at=timezone.now() - timedelta(hours=3)
    )
    followup_log_contact(followup=followups[1], actor=boss, channel="phone")
    followup_resolve(
        followup=followups[2], actor=boss, resolution="Refunded", root_cause="price"
    )
    interaction_record(customer=customer, kind="support_call", channel="phone")
    email = OutboxEmail.objects.create(
        from_email="cx@example.com",
        to="very.long.address.of.a.customer@subdomain.example.co.kr",
        subject="[cxm] 후속 조치 #1이 배정되었습니다: 배송이 너무 늦었고 고객센터는",
        body_text="https://cx.example.com/followups/1/ " * 3,
        body_html="<p>안녕하세요</p>",
    )
    return {
        "staff": staff,
        "manager": boss,
        "agent": mina,
        "agent_id": mina.pk,
        "followup_id": followups[0].pk,
        "email_id": email.pk,
        "customer_id": customer.pk,
        "journey_id": journey_create(name="온라인 구매 여정 (online purchase)").pk,
    }


def words_broken(page) -> list[str]:
    """
    Words broken between two letters at a line's end, but for email addresses,
    links and file names, which a phone cannot show on one line.
    """
    return [text for text in broken_words(page) if not any(c in text for c in "@/.:_")]


def sideways_scroll(page) -> int:
    """
    How many pixels the page is wider than the viewport the test asked for (a
    phone browser zooms out to fit a too-wide page, so not window.innerWidth).
    """
    width = page.viewport_size["width"]
    return page.evaluate("document.scrollingElement.scrollWidth") - width


@pytest.mark.parametrize("staff_page", STAFF_PAGES, ids=lambda p: p.name)
def test_it_draws_every_staff_page_for_phones_and_desktops(
    live_server, page, locale, workspace, staff_page
):
    if staff_page.persona:
        session_for(page, live_server, workspace[staff_page.persona])

    response = page.goto(live_server.url + staff_page.url.format(**workspace))

    assert response.status == staff_page.status
    assert page.locator("html").get_attribute("lang") == locale
    name = f"staff-{staff_page.name}-{locale}-{page.size}"
    screenshot(page, name)
    current = page.locator("header nav [aria-current]")
    if staff_page.persona and staff_page.status == 200:
        # The navigation marks where the user is, in words a screen reader reads
        # and in a style others see.
        assert current.count() <= 1
        if current.count():
            assert current.evaluate("a => getComputedStyle(a).fontWeight") == "600"
    assert axe_violations(page) == [], name
    assert sideways_scroll(page) <= 0, name
    assert words_broken(page) == [], name


def test_it_lands_a_manager_on_the_dashboard(live_server, page, locale, workspace):
    log_in(page, live_server, workspace["manager"])

    page.wait_for_url("**/dashboard/")
    current = page.locator("header nav [aria-current=page]")
    assert current.get_attribute("href") == "/dashboard/"
    assert current.inner_text() == ("Dashboard" if locale == "en" else "대시보드")
    screenshot(page, f"staff-landing-manager-{locale}-{page.size}")


def test_it_lands_an_agent_on_their_own_queue(live_server, page, locale, workspace):
    mina = workspace["agent"]

    log_in(page, live_server, mina)

    page.wait_for_url(f"**/followups/?owner={mina.pk}")
    assert page.locator("#followups tbody tr.mine").count() == 2  # unresolved
    assert page.locator("header nav [aria-current=page]").get_attribute("href") == (
        "/followups/"
    )
    screenshot(page, f"staff-landing-agent-{locale}-{page.size}")


def test_it_lets_an_agent_choose_language_and_time_zone(
    live_server, page, locale, workspace
):
    mina = workspace["agent"]
    followup = FollowUp.objects.get(pk=workspace["followup_id"])
    seoul = timezone.localtime(followup.due_at, ZoneInfo("Asia/Seoul"))
    log_in(page, live_server, mina)

    page.click("header a[href='/preferences/']")
    page.wait_for_url("**/preferences/")
    page.select_option("#id_language", "ko")
    page.select_option("#id_time_zone", "Asia/Seoul")
    with page.expect_navigation():
        page.click("main form button[type=submit]")

    assert page.locator("html").get_attribute("lang") == "ko"
    assert page.locator(".messages").inner_text() == "환경 설정을 저장했습니다."
    screenshot(page, f"staff-preferences-saved-{locale}-{page.size}")
    page.goto(f"{live_server.url}/followups/?owner={mina.pk}")
    due = page.locator(f"#followups tr:has(a[href='/followups/{followup.pk}/']) .due")
    assert due.inner_text() == seoul.strftime("%Y-%m-%d %H:%M")
