"""
Closing the loop with the customer, in Chromium: the agent emails the customer
from the follow-up page (desktop and a 360 px phone), and the customer answers
the recovery check-in (English and Korean, 360 px). Screenshots under
var/screenshots/, axe-core on each page.
"""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cxm.followups.models import FollowUp, FollowUpMessage, FollowUpStatus
from cxm.followups.replies import followup_message_send
from cxm.followups.services import followup_log_contact, followup_resolve
from surveys.services import response_record
from tests.factories import InvitationFactory, agent

from .pages import check_page, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _loop_settings(settings):
    settings.FOLLOWUP_REPLY_ADDRESS = "replies+{token}@cx.example.com"
    settings.FOLLOWUP_CHECKIN_HOURS = 24
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []


@pytest.mark.parametrize("size", [1280, 360], ids=["desktop", "360"])
def test_the_agent_emails_the_customer_from_the_followup_page(
    live_server, browser, size
):
    owner = agent(username=f"mina{size}", first_name="Mina", last_name="Park")
    owner.set_password(PASSWORD)
    owner.save()
    invitation = InvitationFactory(customer__name="Jiho Kim")
    followup = response_record(
        invitation=invitation, score=2, comment="Late again"
    ).followup
    phone = size == 360
    context = browser.new_context(
        viewport={"width": size, "height": 640 if phone else 900},
        is_mobile=phone,
        has_touch=phone,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        log_in(page, live_server, owner)
        page.goto(f"{live_server.url}{followup.get_absolute_url()}")
        assert page.input_value("#id_subject") == "About your feedback"
        assert page.input_value("#id_body").startswith("Hello Jiho Kim,")
        page.locator("#reply").scroll_into_view_if_needed()
        check_page(page, f"followup-reply-{'360' if phone else 'desktop'}")

        page.fill("#id_subject", "Your late delivery")
        page.fill("#id_body", "Hello Jiho,\n\nA courier brings it tomorrow.\n\nMina")
        page.click("#reply-send")
        page.wait_for_url(f"**{followup.get_absolute_url()}")

        assert "Your email to the customer is on its way." in page.inner_text(
            ".messages"
        )
        assert "Your late delivery" in page.inner_text("#messages")
        assert "A courier brings it tomorrow." in page.inner_text("#timeline")
        check_page(page, f"followup-reply-sent-{'360' if phone else 'desktop'}")
    finally:
        context.close()
    message = FollowUpMessage.objects.get(followup=followup)
    assert message.sent_at is not None
    [email] = [m for m in mail.outbox if m.to == [invitation.customer.email]]
    assert email.subject == "Your late delivery"
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.CONTACTED


@pytest.mark.parametrize("locale", ["en", "ko"])
def test_the_customer_answers_the_checkin_on_a_small_phone(
    live_server, small_phone, locale
):
    owner = agent()
    invitation = InvitationFactory(customer__locale=locale)
    followup = response_record(invitation=invitation, score=2).followup
    followup_log_contact(followup=followup, actor=owner, channel="phone")
    followup_resolve(
        followup=followup, actor=owner, resolution="Refunded", root_cause="service"
    )
    checkin = FollowUpMessage.objects.get(followup=followup, kind="checkin")
    later = timezone.now() + timedelta(hours=25)
    assert followup_message_send(message_id=checkin.pk, now=later)
    [email] = [m for m in mail.outbox if m.to == [invitation.customer.email]]
    yes_link = next(
        line.split(" ", 1)[1]
        for line in email.body.splitlines()
        if line.startswith(("Yes: ", "예: "))
    )

    small_phone.goto(yes_link.replace("http://testserver", live_server.url))
    heading = small_phone.inner_text("h1")
    assert heading == (
        "문제가 해결되었나요?" if locale == "ko" else "Did we resolve your issue?"
    )
    assert FollowUp.objects.get(pk=followup.pk).recovered is None
    check_page(small_phone, f"checkin-{locale}-360")

    small_phone.tap("#checkin-yes")
    small_phone.wait_for_url("**?answered=1")

    assert small_phone.locator("#checkin-thanks").is_visible()
    check_page(small_phone, f"checkin-answered-{locale}-360")
    followup.refresh_from_db()
    assert followup.recovered is True
