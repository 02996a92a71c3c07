"""
The rules that protect customers: how often anyone is invited (contact frequency),
reminders to those who have not answered, links that close.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.models import Customer
from cxm.customers.services import customer_unsubscribe
from surveys.models import Campaign, Invitation, InvitationStatus, Response
from surveys.services import (
    _invitation_contested,
    campaign_send,
    invitations_deliver,
    invitations_sweep,
    response_record,
)
from tests.factories import CampaignFactory, CustomerFactory, property_segment

pytestmark = pytest.mark.django_db


def send(customers, **campaign_fields) -> Campaign:
    """A campaign to exactly `customers`, sent and its invitations delivered now."""
    campaign = CampaignFactory(**campaign_fields)
    batch = {"batch": f"b{campaign.pk}"}
    for customer in customers:
        customer.properties = {**customer.properties, **batch}
        customer.save(update_fields=["properties"])
    Campaign.objects.filter(pk=campaign.pk).update(
        segment=property_segment("batch", f"b{campaign.pk}")
    )
    campaign.refresh_from_db()
    campaign_send(campaign=campaign)
    invitations_deliver(
        invitation_ids=list(campaign.invitations.values_list("pk", flat=True))
    )
    return campaign


def backdate(campaign, *, days: float) -> None:
    """Moves a campaign's deliveries `days` into the past."""
    when = timezone.now() - timedelta(days=days)
    campaign.invitations.filter(sent_at__isnull=False).update(sent_at=when)


# Contact frequency


def test_it_skips_a_customer_invited_within_the_default_days(settings, mailoutbox):
    settings.CONTACT_FREQUENCY_DAYS = 30
    customer = CustomerFactory()
    first = send([customer])
    backdate(first, days=29)

    second = send([customer])

    invitation = second.invitations.get()
    assert invitation.status == InvitationStatus.SKIPPED
    assert invitation.skip_reason == "recently_contacted"
    assert invitation.sent_at is None
    assert len(mailoutbox) == 1


def test_it_invites_again_once_the_days_have_passed(settings, mailoutbox):
    settings.CONTACT_FREQUENCY_DAYS = 30
    customer = CustomerFactory()
    backdate(send([customer]), days=31)

    second = send([customer])

    assert second.invitations.get().status == InvitationStatus.SENT
    assert len(mailoutbox) == 2


def test_it_takes_a_campaigns_own_contact_frequency(settings, mailoutbox):
    settings.CONTACT_FREQUENCY_DAYS = 30
    customer = CustomerFactory()
    backdate(send([customer]), days=10)

    shorter = send([customer], contact_frequency_days=7)
    unlimited = send([customer], contact_frequency_days=0)
    longer = send([customer], contact_frequency_days=90)

    assert shorter.invitations.get().status == InvitationStatus.SENT
    assert unlimited.invitations.get().status == InvitationStatus.SENT
    assert longer.invitations.get().skip_reason == "recently_contacted"


def test_it_sends_one_of_two_invitations_to_a_customer_claimed_at_the_same_moment(
    settings, mailoutbox
):
    """
    Two workers claim two campaigns' invitations to one customer at once, each
    claim seeing the other invitation still queued: both are "sending" then. The
    one that asks again first goes back to the queue for a minute; the other is
    emailed, and a minute later the first is held back as recently contacted.
    """
    settings.CONTACT_FREQUENCY_DAYS = 30
    customer = CustomerFactory()
    first, second = (
        CampaignFactory(segment=property_segment("x", "1")) for _ in range(2)
    )
    Customer.objects.filter(pk=customer.pk).update(properties={"x": "1"})
    for campaign in (first, second):
        campaign_send(campaign=campaign)
    Invitation.objects.filter(customer=customer).update(
        status=InvitationStatus.SENDING, attempts=1
    )
    mine, theirs = (
        c.invitations.select_related("campaign").get() for c in (second, first)
    )
    now = timezone.now()

    assert _invitation_contested(invitation=mine, days=30, now=now) is True
    assert _invitation_contested(invitation=theirs, days=30, now=now) is False

    mine.refresh_from_db()
    assert mine.status == InvitationStatus.QUEUED
    assert mine.due_at == now + timedelta(minutes=1)
    assert mine.attempts == 0
    Invitation.objects.filter(pk=theirs.pk).update(
        status=InvitationStatus.SENT, sent_at=now
    )
    Invitation.objects.filter(pk=mine.pk).update(due_at=now)
    invitations_deliver(invitation_ids=[mine.pk])
    mine.refresh_from_db()
    assert mine.skip_reason == "recently_contacted"
    assert mailoutbox == []


def test_it_applies_the_rule_when_delivering_not_when_sending(settings, mailoutbox):
    settings.CONTACT_FREQUENCY_DAYS = 30
    customer = CustomerFactory()
    later = CampaignFactory(segment=property_segment("x", "1"))
    Customer.objects.filter(pk=customer.pk).update(properties={"x": "1"})
    campaign_send(campaign=later)  # queued, not delivered yet
    send([customer])  # another campaign reaches the customer first

    invitations_deliver(
        invitation_ids=list(later.invitations.values_list("pk", flat=True))
    )

    assert later.invitations.get().skip_reason == "recently_contacted"


def test_it_records_why_an_unsubscribed_or_bounced_customer_was_skipped(mailoutbox):
    gone, bounced = CustomerFactory.create_batch(2)
    campaign = CampaignFactory(segment=property_segment("y", "1"))
    Customer.objects.filter(pk__in=[gone.pk, bounced.pk]).update(properties={"y": "1"})
    campaign_send(campaign=campaign)
    customer_unsubscribe(customer=gone)
    Customer.objects.filter(pk=bounced.pk).update(bounced_at=timezone.now())

    invitations_deliver(
        invitation_ids=list(campaign.invitations.values_list("pk", flat=True))
    )

    reasons = dict(campaign.invitations.values_list("customer_id", "skip_reason"))
    assert reasons == {gone.pk: "unsubscribed", bounced.pk: "bounced"}
    assert mailoutbox == []


# Reminders


def test_it_reminds_those_who_have_not_answered_up_to_n_times_d_days_apart(
    mailoutbox,
):
    quiet, answered, gone = CustomerFactory.create_batch(3)
    campaign = send(
        [quiet, answered, gone], reminders=2, reminder_interval_days=3, name="Spring"
    )
    response_record(invitation=campaign.invitations.get(customer=answered), score=9)
    customer_unsubscribe(customer=gone)
    mailoutbox.clear()
    first_due = campaign.invitations.get(customer=quiet)
    assert first_due.remind_due_at - first_due.sent_at == timedelta(days=3)

    invitations_sweep(now=timezone.now() + timedelta(days=2))
    assert mailoutbox == []

    # The delivery task checks due times against the real clock: move them back.
    Invitation.objects.filter(remind_due_at__isnull=False).update(
        remind_due_at=timezone.now()
    )
    invitations_sweep()
    assert [m.to for m in mailoutbox] == [[quiet.email]]
    first = mailoutbox[0]
    assert first.subject == "A reminder: a quick question about your experience"
    assert first.extra_headers["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
    assert "/unsubscribe/" in first.extra_headers["List-Unsubscribe"]
    invitation = campaign.invitations.get(customer=quiet)
    assert invitation.reminders_sent == 1
    assert invitation.reminded_at is not None
    assert invitation.remind_due_at - invitation.reminded_at == timedelta(days=3)

    Invitation.objects.filter(pk=invitation.pk).update(remind_due_at=timezone.now())
    invitations_sweep()
    invitation.refresh_from_db()
    assert invitation.reminders_sent == 2
    assert invitation.remind_due_at is None  # two was the most
    assert len(mailoutbox) == 2
    assert (
        mailoutbox[0].extra_headers["Message-ID"]
        != (mailoutbox[1].extra_headers["Message-ID"])
    )


def test_it_sends_no_reminder_without_reminders_set(mailoutbox):
    campaign = send([CustomerFactory()])

    assert campaign.invitations.get().remind_due_at is None


def test_it_sends_a_korean_reminder_to_a_korean_customer(mailoutbox):
    customer = CustomerFactory(locale="ko")
    campaign = send([customer], reminders=1)
    mailoutbox.clear()
    campaign.invitations.update(remind_due_at=timezone.now())

    invitations_sweep()

    [message] = mailoutbox
    assert "다시 알려 드립니다" in message.subject
    assert "다시 알려 드립니다" in message.body


def test_it_sends_no_reminder_to_an_answer_given_meanwhile(mailoutbox):
    customer = CustomerFactory()
    campaign = send([customer], reminders=1)
    invitation = campaign.invitations.get()
    mailoutbox.clear()
    Invitation.objects.filter(pk=invitation.pk).update(remind_due_at=timezone.now())
    response_record(invitation=invitation, score=3)

    invitations_deliver(invitation_ids=[invitation.pk])
    invitations_sweep()

    assert mailoutbox == []


def test_it_sends_no_reminder_to_a_bounced_or_unsubscribed_customer(mailoutbox):
    bounced, gone = CustomerFactory.create_batch(2)
    campaign = send([bounced, gone], reminders=1)
    mailoutbox.clear()
    campaign.invitations.filter(customer=bounced).update(status="bounced")
    customer_unsubscribe(customer=gone)
    campaign.invitations.update(remind_due_at=timezone.now())

    invitations_sweep()

    assert mailoutbox == []
    assert not campaign.invitations.filter(reminders_sent__gt=0).exists()


def test_it_sends_a_reminder_once_when_delivered_twice(mailoutbox):
    campaign = send([CustomerFactory()], reminders=3)
    mailoutbox.clear()
    campaign.invitations.update(remind_due_at=timezone.now())
    pk = campaign.invitations.get().pk

    invitations_deliver(invitation_ids=[pk])
    invitations_deliver(invitation_ids=[pk])

    assert len(mailoutbox) == 1


def test_it_takes_back_a_reminder_whose_worker_died(settings, mailoutbox):
    campaign = send([CustomerFactory()], reminders=1)
    mailoutbox.clear()
    long_ago = timezone.now() - timedelta(seconds=settings.DELIVERY_CLAIM_TIMEOUT + 5)
    # Claimed, then the worker vanished before sending.
    campaign.invitations.update(remind_due_at=None, remind_claimed_at=long_ago)

    invitations_sweep()

    assert len(mailoutbox) == 1
    assert campaign.invitations.get().reminders_sent == 1


# Expiry


def test_it_closes_a_link_e_days_after_its_email(client, mailoutbox):
    campaign = send([CustomerFactory()], expires_after_days=7)
    invitation = campaign.invitations.get()
    assert invitation.expires_at - invitation.sent_at == timedelta(days=7)
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    page = client.get(f"/s/{invitation.token}/?score=9")
    post = client.post(f"/s/{invitation.token}/", {"score": "9"})

    assert page.status_code == post.status_code == 410
    assert "This survey is closed" in post.content.decode()
    assert not Response.objects.exists()
    invitations_sweep()
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.EXPIRED


def test_it_closes_links_on_the_campaigns_date_whichever_comes_first(mailoutbox):
    soon = timezone.now() + timedelta(days=2)
    campaign = send([CustomerFactory()], expires_after_days=7, expires_at=soon)

    assert campaign.invitations.get().expires_at == soon


def test_it_sends_no_reminder_after_the_link_closed(mailoutbox):
    campaign = send([CustomerFactory()], reminders=1, expires_after_days=1)
    mailoutbox.clear()
    past = timezone.now() - timedelta(seconds=1)
    campaign.invitations.update(remind_due_at=past, expires_at=past)

    invitations_sweep()

    assert mailoutbox == []
    invitation = campaign.invitations.get()
    assert invitation.status == InvitationStatus.EXPIRED
    assert invitation.remind_due_at is None


def test_it_shows_a_korean_closed_page_to_a_korean_customer(client, mailoutbox):
    campaign = send([CustomerFactory(locale="ko")], expires_after_days=1)
    invitation = campaign.invitations.get()
    Invitation.objects.filter(pk=invitation.pk).update(status="expired")

    page = client.get(f"/s/{invitation.token}/")

    assert page.status_code == 410
    assert page["Content-Language"] == "ko"
