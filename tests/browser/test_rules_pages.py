"""
The pages of the rules that protect customers, in Chromium: a link closed E days
after its email, the unsubscribe confirmation the email's visible link leads to,
the page a one-click post answers, and the staff's outbox searched. Each in English
and Korean, on a 360 px phone and a desktop, through axe-core, with screenshots
under var/screenshots/.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.models import Customer
from cxm.outbox.models import OutboxEmail
from surveys.models import Invitation, Response
from surveys.services import invitations_deliver, response_record
from tests.factories import CampaignFactory, InvitationFactory, UserFactory

from .pages import axe_violations, check_page, screenshot, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_shows_a_polite_closed_page_for_a_link_past_its_days(
    live_server, page, locale
):
    invitation = InvitationFactory(
        customer__locale=locale, campaign__expires_after_days=7
    )
    invitations_deliver(invitation_ids=[invitation.pk])
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    r = page.goto(f"{live_server.url}/s/{invitation.token}/?score=9")

    assert r.status == 410
    assert page.locator("h1").inner_text() == (
        "This survey is closed" if locale == "en" else "종료된 설문조사입니다"
    )
    check_page(page, f"closed-after-days-{locale}-{page.size}")
    assert not Response.objects.exists()


def test_it_asks_to_confirm_before_unsubscribing_from_the_emails_link(
    live_server, page, locale
):
    invitation = InvitationFactory(customer__locale=locale)

    r = page.goto(f"{live_server.url}/s/{invitation.token}/unsubscribe/")

    assert r.status == 200
    assert page.locator("form button[type=submit]").count() == 1
    check_page(page, f"unsubscribe-confirm-{locale}-{page.size}")
    assert Customer.objects.get(pk=invitation.customer_id).unsubscribed_at is None


def test_it_shows_the_one_click_answer_for_any_link(live_server, page, locale):
    page.goto(f"{live_server.url}/s/unknowntoken/unsubscribe/")  # a 404
    # What a mail provider posts (RFC 8058), as a form of the same origin.
    with page.expect_navigation() as navigation:
        page.evaluate(
            """() => {
                const form = document.createElement("form");
                form.method = "post";
                form.action = location.pathname;
                const field = document.createElement("input");
                field.name = "List-Unsubscribe";
                field.value = "One-Click";
                form.append(field);
                document.body.append(form);
                form.submit();
            }"""
        )

    assert navigation.value.status == 200
    check_page(page, f"unsubscribed-one-click-{locale}-{page.size}")


def test_it_lets_staff_search_the_outbox(live_server, settings, page, locale):
    settings.EMAIL_BACKEND = "cxm.outbox.backends.EmailBackend"
    campaign = CampaignFactory(contact_frequency_days=0)
    invitations = [
        InvitationFactory(campaign=campaign, customer__email=f"kim{n}@example.com")
        for n in range(3)
    ]
    invitations_deliver(invitation_ids=[i.pk for i in invitations])
    response_record(invitation=invitations[0], score=9)
    user = UserFactory(is_staff=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery")
    with page.expect_navigation():
        page.click("form button[type=submit], form input[type=submit]")

    page.goto(f"{live_server.url}/outbox/")
    page.fill("#id_q", "kim0")
    page.select_option("#id_kind", "invitation")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")

    assert page.locator("#outbox tbody tr").count() == 1
    assert page.locator("#outbox .badge").count() == 1
    assert OutboxEmail.objects.count() == 3
    check_page(page, f"outbox-search-{locale}-{page.size}")


def log_in(page, live_server):
    user = UserFactory(is_staff=True, is_superuser=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery")
    with page.expect_navigation():
        page.click("form button[type=submit], form input[type=submit]")


def test_it_shows_staff_where_a_campaigns_invitations_stand(
    live_server, settings, page, locale
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    earlier = CampaignFactory(name="Winter", contact_frequency_days=0)
    campaign = CampaignFactory(name="Spring", reminders=2)
    customers = []
    for _ in range(4):
        invitation = InvitationFactory(campaign=earlier)
        customers.append(invitation.customer)
    invitations_deliver(
        invitation_ids=list(earlier.invitations.values_list("pk", flat=True))
    )
    Invitation.objects.filter(campaign=earlier).update(
        sent_at=timezone.now() - timedelta(days=40)
    )
    Invitation.objects.filter(pk=earlier.invitations.first().pk).update(
        sent_at=timezone.now()
    )
    spring = [InvitationFactory(campaign=campaign, customer=c) for c in customers]
    invitations_deliver(invitation_ids=[i.pk for i in spring])
    response_record(invitation=spring[1], score=4)
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/surveys/campaign/{campaign.pk}/change/")

    summary = page.locator(".field-invitation_summary").inner_text()
    assert ("Recently contacted" if locale == "en" else "최근에 연락함") in summary
    screenshot(page, f"campaign-stats-{locale}-{page.size}")
    # Django's own breadcrumbs (its stylesheet) are not this page's to fix; the
    # form, the counts and their links are.
    assert [v for v in axe_violations(page) if ".breadcrumbs" not in v] == [], locale
    assert sideways_scroll(page) <= 0

    # The dashboard for this campaign: its response rate over what was delivered.
    page.goto(f"{live_server.url}/dashboard/?campaign={campaign.pk}")
    assert page.locator("#rate-table >> text=33.3 %").count() == 1  # 1 of 3
    check_page(page, f"dashboard-rate-{locale}-{page.size}")
