"""
The customer's whole story, in Chromium: an agent opens a detractor's follow-up,
follows the link to the customer's page, reads their earlier answers and
interactions, goes back and replies; at 360 px and desktop, in English and
Korean. Screenshots under var/screenshots/, axe-core on each page.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.services import interaction_record
from cxm.followups.models import FollowUpMessage
from surveys.services import response_record
from tests.factories import CustomerFactory, InvitationFactory, agent

from .pages import check_page, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _reply_settings(settings):
    settings.FOLLOWUP_REPLY_ADDRESS = "replies+{token}@cx.example.com"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_the_agent_reads_the_customers_story_before_replying(live_server, page, locale):
    owner = agent(username=f"mina-{locale}-{page.size}")
    owner.set_password(PASSWORD)
    owner.save()
    customer = CustomerFactory(
        name="Jiho Kim",
        locale=locale,
        properties={"plan": "pro", "region": "Seoul"},
    )
    interaction_record(
        customer=customer,
        kind="purchase",
        channel="store",
        occurred_at=timezone.now() - timedelta(days=40),
        properties={"order_total": 120},
    )
    interaction_record(
        customer=customer,
        kind="support_call",
        channel="phone",
        occurred_at=timezone.now() - timedelta(days=3),
    )
    earlier = InvitationFactory(customer=customer)
    response_record(invitation=earlier, score=9, comment="Friendly staff")
    latest = InvitationFactory(customer=customer)
    followup = response_record(
        invitation=latest, score=2, comment="Late again"
    ).followup
    assert followup.owner == owner

    # The agent lands on their own queue and opens the follow-up from it.
    log_in(page, live_server, owner)
    assert f"owner={owner.pk}" in page.url
    page.click(f'td.id a[href="{followup.get_absolute_url()}"]')
    page.wait_for_url(f"**{followup.get_absolute_url()}")
    page.click("#customer-page")
    page.wait_for_url(f"**/customers/{customer.pk}/")
    timeline = page.inner_text("#timeline")
    for text in ("Friendly staff", "Late again", "purchase", "support_call"):
        assert text in timeline
    assert "pro" in page.inner_text("#who")
    assert page.locator("#scores table").count() == 1
    check_page(page, f"customer-page-{locale}-{page.size}")

    page.go_back()
    page.wait_for_url(f"**{followup.get_absolute_url()}")
    page.fill("#id_subject", "Your late delivery")
    page.fill("#id_body", "Hello Jiho,\n\nA courier brings it tomorrow.\n\nMina")
    page.click("#reply-send")
    page.wait_for_url(f"**{followup.get_absolute_url()}")
    assert FollowUpMessage.objects.filter(
        followup=followup, subject="Your late delivery"
    ).exists()

    # The reply is part of the story now.
    page.click("#customer-page")
    page.wait_for_url(f"**/customers/{customer.pk}/")
    assert "Your late delivery" in page.inner_text("#timeline")
