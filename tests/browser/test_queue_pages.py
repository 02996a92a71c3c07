"""
The follow-up queue and a follow-up page, in Chromium: in English and Korean, on
a 360 px phone and a desktop, through axe-core (badge contrast included), with no
sideways scroll, screenshots under var/screenshots/. And a manager's bulk reassign.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.services import interaction_record
from cxm.followups.models import FollowUp, Team
from cxm.followups.services import (
    followup_log_contact,
    followup_resolve,
    followup_wait_on_customer,
    team_save,
)
from surveys.services import response_record
from tests.factories import CustomerFactory, InvitationFactory, agent, manager

from .pages import check_page, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queue():
    """A team's queue with one follow-up in each state, a long comment, a history."""
    boss = manager(username="boss")
    mina, joon = agent(username="mina"), agent(username="joon")
    team = team_save(team=Team(name="Seoul", manager=boss), members=[mina, joon])
    customer = CustomerFactory(name="김민지", email="minji@example.co.kr", locale="ko")
    followups, invitations = [], []
    for n, score in enumerate([0, 2, 4, 6, 5, 1]):
        invitation = InvitationFactory(
            customer=customer if n == 0 else CustomerFactory()
        )
        invitations.append(invitation)
        comment = (
            "배송이 너무 늦었고 고객센터는 전화를 받지 않았습니다. " * 3
            if n == 0
            else "Late again, and nobody called back about the refund."
        )
        followups.append(
            response_record(
                invitation=invitation, score=score, comment=comment
            ).followup
        )
    FollowUp.objects.filter(pk__in=[f.pk for f in followups]).update(team=team)
    response_record(  # the first customer changes the answer: it keeps its history
        invitation=invitations[0], score=1, comment="전화 한 통이면 됐을 텐데요."
    )
    followup_log_contact(followup=followups[1], actor=boss, channel="phone")
    followup_wait_on_customer(followup=followups[2], actor=boss)
    followup_resolve(
        followup=followups[3], actor=boss, resolution="Refunded", root_cause="price"
    )
    FollowUp.objects.filter(pk=followups[4].pk).update(
        due_at=timezone.now() - timedelta(hours=3)
    )
    interaction_record(customer=customer, kind="support_call", channel="phone")
    return {"manager": boss, "agents": [mina, joon], "followups": followups}


def test_it_draws_the_queue_for_phones_and_desktops(live_server, page, locale, queue):
    log_in(page, live_server, queue["manager"])

    page.goto(f"{live_server.url}/followups/?status=any")

    assert page.locator("#followups tbody tr").count() == 6
    assert page.locator("#bulk-assign").count() == 1
    check_page(page, f"followup-queue-{locale}-{page.size}")


def test_it_draws_the_followup_page_with_the_customers_history(
    live_server, page, locale, queue
):
    log_in(page, live_server, queue["agents"][0])
    followup = queue["followups"][0]

    page.goto(f"{live_server.url}/followups/{followup.pk}/")

    assert page.locator("#earlier-answers li").count() == 1
    assert page.locator("#earlier-answers .earlier").count() == 1
    assert page.locator("#interactions li").count() == 1
    check_page(page, f"followup-page-{locale}-{page.size}")


def test_it_lets_a_manager_reassign_chosen_rows(live_server, desktop, queue):
    log_in(desktop, live_server, queue["manager"])
    joon = queue["agents"][1]
    first, second = queue["followups"][0], queue["followups"][1]

    desktop.goto(f"{live_server.url}/followups/")
    desktop.check(f"#pick-{first.pk}")
    desktop.check(f"#pick-{second.pk}")
    desktop.select_option("#id_bulk_owner", label="joon")
    with desktop.expect_navigation():
        desktop.click("#bulk-assign button[type=submit]")

    assert "2 follow-ups given to joon." in desktop.inner_text(".messages")
    owners = set(
        FollowUp.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "owner", flat=True
        )
    )
    assert owners == {joon.pk}
