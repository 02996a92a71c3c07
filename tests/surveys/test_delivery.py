"""Delivering invitation emails: once each, to the right place, with retries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.customers.models import Customer
from surveys import tasks
from surveys.models import Campaign, CampaignStatus, Invitation, InvitationStatus
from surveys.services import (
    MAX_ATTEMPTS,
    campaign_send,
    invitation_message,
    invitations_deliver,
    invitations_enqueue,
    invitations_sweep,
    response_record,
)
from tests import email_backends
from tests.factories import CampaignFactory, CustomerFactory, InvitationFactory

pytestmark = pytest.mark.django_db


def sent_campaign(customers=2) -> Campaign:
    """A campaign sent to `customers` new customers, its invitations still queued."""
    campaign = CampaignFactory()
    audience = {"batch": f"b{campaign.pk}"}
    CustomerFactory.create_batch(customers, properties=audience)
    Campaign.objects.filter(pk=campaign.pk).update(audience=audience)
    campaign_send(campaign=campaign)
    return campaign


def ids(campaign) -> list[int]:
    return list(campaign.invitations.order_by("pk").values_list("pk", flat=True))


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


# The message


def test_it_sends_a_text_and_an_html_part(mailoutbox):
    invitation = InvitationFactory()

    invitations_deliver(invitation_ids=[invitation.pk])

    [message] = mailoutbox
    assert message.to == [invitation.customer.email]
    mime = message.message()
    assert mime.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in mime.get_payload()]
    assert parts == ["text/plain", "text/html"]
    assert message.body.strip() and html_of(message).strip()


def test_it_puts_the_personal_link_in_both_parts(mailoutbox):
    invitation = InvitationFactory()

    invitations_deliver(invitation_ids=[invitation.pk])

    link = f"http://testserver/s/{invitation.token}/"
    [message] = mailoutbox
    assert link in message.body
    assert f'href="{link}"' in html_of(message)


def test_it_offers_the_eleven_scores_as_links_in_the_html(mailoutbox):
    invitation = InvitationFactory()

    invitations_deliver(invitation_ids=[invitation.pk])

    html = html_of(mailoutbox[0])
    link = f"http://testserver/s/{invitation.token}/"
    for n in range(11):
        assert f'href="{link}?score={n}"' in html
    assert html.count("?score=") == 11


def test_it_sets_the_one_click_list_unsubscribe_headers(mailoutbox):
    invitation = InvitationFactory()

    invitations_deliver(invitation_ids=[invitation.pk])

    header = f"<http://testserver/s/{invitation.token}/unsubscribe/>"
    message = mailoutbox[0].message()
    assert message["List-Unsubscribe"] == header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_it_gives_every_attempt_at_an_invitation_the_same_message_id(mailoutbox):
    invitation = InvitationFactory()
    other = InvitationFactory()

    for _ in range(2):
        invitations_deliver(invitation_ids=[invitation.pk, other.pk])
        Invitation.objects.update(status=InvitationStatus.QUEUED)

    first, second, again, again_other = (m.message()["Message-ID"] for m in mailoutbox)
    assert first == again != second == again_other
    assert first == f"<invitation-{invitation.pk}-{invitation.campaign_id}@testserver>"


def test_it_renders_the_invitation_in_the_customers_language():
    korean = InvitationFactory(customer__locale="ko")
    english = InvitationFactory(customer__locale="en")

    assert '<html lang="ko"' in html_of(invitation_message(invitation=korean))
    assert '<html lang="en"' in html_of(invitation_message(invitation=english))


# Delivery


def test_it_marks_delivered_invitations_sent(mailoutbox):
    campaign = sent_campaign(customers=3)

    assert invitations_deliver(invitation_ids=ids(campaign)) == 3

    assert len(mailoutbox) == 3
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        Customer.objects.values_list("email", flat=True)
    )
    for invitation in campaign.invitations.all():
        assert invitation.status == InvitationStatus.SENT
        assert invitation.sent_at is not None
        assert invitation.attempts == 1


def test_it_sends_each_email_once_when_delivery_runs_twice(mailoutbox):
    campaign = sent_campaign(customers=3)

    first = invitations_deliver(invitation_ids=ids(campaign))
    second = invitations_deliver(invitation_ids=ids(campaign))

    assert (first, second) == (3, 0)
    assert len(mailoutbox) == 3


def test_it_does_not_email_an_invitation_answered_before_delivery(mailoutbox):
    campaign = sent_campaign(customers=2)
    answered, waiting = campaign.invitations.order_by("pk")
    response_record(invitation=answered, score=9)

    assert invitations_deliver(invitation_ids=ids(campaign)) == 1

    assert [m.to for m in mailoutbox] == [[waiting.customer.email]]
    answered.refresh_from_db()
    assert answered.status == InvitationStatus.ANSWERED
    assert answered.sent_at is None


def test_it_does_not_email_a_customer_who_unsubscribed_after_the_send(mailoutbox):
    campaign = sent_campaign(customers=1)
    invitation = campaign.invitations.get()
    Customer.objects.filter(pk=invitation.customer_id).update(
        unsubscribed_at=timezone.now()
    )

    assert invitations_deliver(invitation_ids=[invitation.pk]) == 0

    assert mailoutbox == []
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.FAILED


def test_it_does_not_deliver_an_invitation_before_it_is_due(mailoutbox):
    invitation = InvitationFactory(due_at=timezone.now() + timedelta(hours=1))

    assert invitations_deliver(invitation_ids=[invitation.pk]) == 0

    assert mailoutbox == []
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.QUEUED


def test_it_marks_a_refused_recipient_bounced_and_the_customer_bounced(
    settings, monkeypatch, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.RefusingBackend"
    campaign = sent_campaign(customers=2)
    refused, accepted = campaign.invitations.select_related("customer").order_by("pk")
    monkeypatch.setattr(
        email_backends.RefusingBackend, "refused", {refused.customer.email}
    )

    assert invitations_deliver(invitation_ids=ids(campaign)) == 1

    assert [m.to for m in mailoutbox] == [[accepted.customer.email]]
    refused.refresh_from_db()
    assert refused.status == InvitationStatus.BOUNCED
    assert "No such user" in refused.last_error
    refused.customer.refresh_from_db()
    assert refused.customer.bounced_at is not None
    assert not refused.customer.is_contactable
    accepted.customer.refresh_from_db()
    assert accepted.customer.bounced_at is None


def test_it_requeues_with_a_later_due_time_when_the_server_is_unreachable(
    settings, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.UnreachableBackend"
    invitation = InvitationFactory()
    before = timezone.now()

    assert invitations_deliver(invitation_ids=[invitation.pk]) == 0

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.QUEUED
    assert invitation.attempts == 1
    assert invitation.due_at > before + timedelta(minutes=1)
    assert invitation.claimed_at is None
    assert "refused" in invitation.last_error.lower()
    assert mailoutbox == []


def test_it_requeues_with_a_later_due_time_when_the_connection_drops(
    settings, monkeypatch, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.FlakyBackend"
    monkeypatch.setattr(email_backends.FlakyBackend, "failures", 1)
    failing, fine = InvitationFactory(), InvitationFactory()
    before = timezone.now()

    assert invitations_deliver(invitation_ids=[failing.pk, fine.pk]) == 1

    failing.refresh_from_db()
    assert failing.status == InvitationStatus.QUEUED
    assert failing.attempts == 1
    assert failing.due_at > before + timedelta(minutes=1)
    assert Invitation.objects.get(pk=fine.pk).status == InvitationStatus.SENT
    assert [m.to for m in mailoutbox] == [[fine.customer.email]]


def test_it_delivers_a_requeued_invitation_in_the_first_sweep_after_it_is_due(
    settings, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.UnreachableBackend"
    invitation = InvitationFactory()
    invitations_sweep()
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.QUEUED

    # The server is back, and the backoff has passed.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Invitation.objects.filter(pk=invitation.pk).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )
    assert invitations_sweep() == 1

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    assert invitation.attempts == 2
    assert [m.to for m in mailoutbox] == [[invitation.customer.email]]


def test_it_waits_longer_after_each_failed_attempt_and_fails_after_the_last(
    settings, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.UnreachableBackend"
    invitation = InvitationFactory()
    waits = []

    for attempt in range(1, MAX_ATTEMPTS + 1):
        # Time passes until the invitation is due again.
        Invitation.objects.filter(pk=invitation.pk).update(
            due_at=timezone.now() - timedelta(seconds=1)
        )
        before = timezone.now()
        invitations_deliver(invitation_ids=[invitation.pk])
        invitation.refresh_from_db()
        assert invitation.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert invitation.status == InvitationStatus.QUEUED
            waits.append(invitation.due_at - before)

    assert invitation.status == InvitationStatus.FAILED
    assert waits == sorted(waits) and len(set(waits)) == len(waits)
    # A failed invitation is not tried again.
    Invitation.objects.filter(pk=invitation.pk).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )
    invitations_deliver(invitation_ids=[invitation.pk])
    assert Invitation.objects.get(pk=invitation.pk).attempts == MAX_ATTEMPTS
    assert mailoutbox == []


def test_it_marks_the_campaign_sent_when_no_invitation_is_waiting(mailoutbox):
    campaign = sent_campaign(customers=2)
    first, second = ids(campaign)

    invitations_deliver(invitation_ids=[first])
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING

    invitations_deliver(invitation_ids=[second])
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def test_it_marks_the_campaign_sent_when_its_last_invitation_fails_for_good(
    settings,
):
    settings.EMAIL_BACKEND = "tests.email_backends.UnreachableBackend"
    campaign = sent_campaign(customers=1)
    Invitation.objects.filter(campaign=campaign).update(attempts=MAX_ATTEMPTS - 1)

    invitations_deliver(invitation_ids=ids(campaign))

    assert campaign.invitations.get().status == InvitationStatus.FAILED
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def test_it_marks_the_campaign_sent_when_its_last_invitation_was_answered_first():
    campaign = sent_campaign(customers=1)
    response_record(invitation=campaign.invitations.get(), score=10)

    invitations_sweep()

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def test_it_marks_a_campaign_with_nobody_to_invite_sent_at_once():
    campaign = CampaignFactory()

    assert campaign_send(campaign=campaign) == 0

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


# Enqueueing and the sweep (Celery runs eagerly here)


def test_it_emails_the_invitations_once_the_send_commits(
    django_capture_on_commit_callbacks, mailoutbox
):
    CustomerFactory.create_batch(3)
    campaign = CampaignFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        campaign_send(campaign=campaign)
    assert mailoutbox == []

    for callback in callbacks:
        callback()

    assert len(mailoutbox) == 3
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT


def test_it_enqueues_only_due_queued_invitations_of_the_campaign(mailoutbox):
    campaign = sent_campaign(customers=2)
    other = sent_campaign(customers=1)
    later = InvitationFactory(
        campaign=campaign, due_at=timezone.now() + timedelta(hours=1)
    )

    assert invitations_enqueue(campaign_id=campaign.pk) == 2

    assert len(mailoutbox) == 2
    assert Invitation.objects.get(pk=later.pk).status == InvitationStatus.QUEUED
    assert set(other.invitations.values_list("status", flat=True)) == {
        InvitationStatus.QUEUED
    }


def test_it_enqueues_due_invitations_of_every_campaign_in_the_sweep(mailoutbox):
    sent_campaign(customers=2)
    sent_campaign(customers=1)

    assert invitations_sweep() == 3

    assert len(mailoutbox) == 3
    assert not Invitation.objects.exclude(status=InvitationStatus.SENT).exists()


def test_it_requeues_claims_older_than_the_claim_timeout_in_the_sweep(
    settings, mailoutbox
):
    settings.DELIVERY_CLAIM_TIMEOUT = 90
    stale = InvitationFactory(
        status=InvitationStatus.SENDING,
        claimed_at=timezone.now() - timedelta(seconds=91),
        attempts=1,
    )
    fresh = InvitationFactory(
        status=InvitationStatus.SENDING,
        claimed_at=timezone.now() - timedelta(seconds=80),
        attempts=1,
    )

    invitations_sweep()

    stale.refresh_from_db()
    assert stale.status == InvitationStatus.SENT
    assert stale.attempts == 2
    fresh.refresh_from_db()
    assert fresh.status == InvitationStatus.SENDING
    assert [m.to for m in mailoutbox] == [[stale.customer.email]]


def test_it_delivers_through_the_invitations_send_task(mailoutbox):
    campaign = sent_campaign(customers=2)

    assert tasks.invitations_send.delay(ids(campaign)).get() == 2

    assert len(mailoutbox) == 2


def test_it_sweeps_through_the_invitations_sweep_task(mailoutbox):
    sent_campaign(customers=2)

    assert tasks.invitations_sweep.delay().get() == 2

    assert len(mailoutbox) == 2


def test_it_fails_a_message_that_cannot_be_built_without_stranding_the_batch(
    mailoutbox,
):
    campaign = CampaignFactory()
    bad = CustomerFactory(email="bad@example.com")
    good = CustomerFactory()
    # A newline in a header is refused when the message is built.
    Customer.objects.filter(pk=bad.pk).update(email="bad@example.com\nBcc: x@y.z")
    campaign_send(campaign=campaign)
    invitations = Invitation.objects.filter(campaign=campaign)
    invitations_deliver(invitation_ids=list(invitations.values_list("pk", flat=True)))
    assert [m.to for m in mailoutbox] == [[good.email]]
    failed = invitations.get(customer=bad)
    assert failed.status == InvitationStatus.QUEUED  # retried later with backoff
    assert failed.attempts == 1 and failed.last_error
    assert invitations.get(customer=good).status == InvitationStatus.SENT


# A worker that dies


def test_it_leaves_a_dead_worker_holding_only_the_invitation_it_was_emailing(
    settings, monkeypatch, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.DyingBackend"
    monkeypatch.setattr(email_backends.DyingBackend, "sends", 2)
    settings.DELIVERY_CLAIM_TIMEOUT = 90
    settings.DELIVERY_REQUEUE_AFTER = 60
    campaign = CampaignFactory()
    CustomerFactory.create_batch(5)
    campaign_send(campaign=campaign)  # enqueues nothing: no commit in a test
    invitations = campaign.invitations.order_by("pk")
    Invitation.objects.filter(campaign=campaign).update(enqueued_at=timezone.now())

    with pytest.raises(email_backends.Dying):
        invitations_deliver(invitation_ids=ids(campaign))

    states = list(invitations.values_list("status", flat=True))
    assert states == ["sent", "sent", "sending", "queued", "queued"]
    # A sweep soon after sends nothing: the claim and the message may be alive.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert invitations_sweep(now=timezone.now() + timedelta(seconds=30)) == 0
    # Past both waits, all three go out, each once.
    later = timezone.now() + timedelta(seconds=91)
    assert invitations_sweep(now=later) == 3
    assert [m.to[0] for m in mailoutbox].count(invitations[2].customer.email) == 1
    assert len(mailoutbox) == 5
    assert set(invitations.values_list("status", flat=True)) == {"sent"}


def test_it_marks_each_email_sent_in_the_statement_that_claims_the_next(
    mailoutbox, django_assert_num_queries
):
    campaign = sent_campaign(customers=5)
    batch = ids(campaign)

    # The batch and its survey's questions, one statement per invitation (claim
    # it, with the previous one marked sent), the last one marked sent, the
    # campaign finished.
    with django_assert_num_queries(2 + 5 + 1 + 1):
        assert invitations_deliver(invitation_ids=batch) == 5

    assert len(mailoutbox) == 5
    assert set(campaign.invitations.values_list("status", flat=True)) == {
        InvitationStatus.SENT
    }
    assert not campaign.invitations.filter(sent_at=None).exists()
