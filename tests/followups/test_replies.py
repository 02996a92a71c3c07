"""
The reply email from the follow-up page, and the customer's answer an email
service posts back (Mailgun's inbound webhook, signed, as the service posts it).
"""

import base64
import hashlib
import hmac
import time
from datetime import timedelta
from email.utils import make_msgid

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from cxm.followups.models import (
    EventKind,
    FollowUp,
    FollowUpMessage,
    FollowUpStatus,
    MessageDirection,
)
from cxm.followups.replies import followup_reply_send
from cxm.followups.services import followup_wait_on_customer, followups_sweep
from surveys.services import response_record
from tests import email_backends
from tests.factories import InvitationFactory, UserFactory, agent

pytestmark = pytest.mark.django_db

SIGNING_KEY = "key-mailgun-webhook-signing"
BASIC_AUTH = "mailgun:webhook-password"


@pytest.fixture(autouse=True)
def reply_address(settings):
    settings.FOLLOWUP_REPLY_ADDRESS = "replies+{token}@cx.example.com"
    settings.DEFAULT_FROM_EMAIL = "Acme CX <cx@cx.example.com>"
    settings.COMPANY_NAME = "Acme"


@pytest.fixture
def owner():
    return agent(first_name="Mina", last_name="Park")


@pytest.fixture
def followup(owner):
    followup = response_record(invitation=InvitationFactory(), score=2).followup
    followup.refresh_from_db()
    assert followup.owner == owner
    return followup


def send(followup, owner, body="We refunded you.", subject="About your order"):
    return followup_reply_send(
        followup=followup, actor=owner, subject=subject, body=body
    )


def to_customer(outbox, followup):
    """The emails to the customer (the sweep also tells the owner of the follow-up)."""
    return [m for m in outbox if m.to == [followup.customer.email]]


# The page


def test_it_prefills_the_reply_in_english_signed_by_the_agent(client, followup, owner):
    client.force_login(owner)

    page = client.get(followup.get_absolute_url()).content.decode()

    assert 'id="reply-form"' in page
    assert 'value="About your feedback"' in page
    assert f"Hello {followup.customer.name}," in page
    assert "Mina Park" in page
    assert "The Acme team" in page


def test_it_prefills_the_reply_in_the_customers_korean(client, followup, owner):
    customer = followup.customer
    customer.locale = "ko"
    customer.save()
    client.force_login(owner)

    page = client.get(followup.get_absolute_url()).content.decode()

    assert 'value="보내 주신 의견에 대해"' in page
    assert f"{customer.name}님, 안녕하세요." in page
    assert "Acme 팀 드림" in page
    assert "을(를)" not in page


def test_it_sends_the_reply_from_the_page_as_the_first_contact(
    client, followup, owner, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("followups:reply", args=[followup.pk]),
            {"subject": "Your refund", "body": "Hello,\n\nWe refunded you."},
        )

    assert response.status_code == 302
    [message] = FollowUpMessage.objects.filter(followup=followup)
    assert (message.direction, message.kind, message.created_by) == (
        "out",
        "reply",
        owner,
    )
    assert message.sent_at is not None
    [email] = mailoutbox
    assert email.to == [followup.customer.email]
    assert email.subject == "Your refund"
    assert "We refunded you." in email.body
    assert email.extra_headers["Message-ID"] == message.message_id
    assert email.reply_to == [f"replies+{message.token}@cx.example.com"]
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.CONTACTED
    assert followup.first_contact_at is not None
    contact = followup.events.get(kind=EventKind.CONTACTED)
    assert contact.actor == owner
    assert contact.description() == "Email: Your refund\n\nHello,\n\nWe refunded you."
    page = client.get(followup.get_absolute_url()).content.decode()
    assert 'id="messages"' in page and "Your refund" in page


def test_it_refuses_an_empty_email_with_a_400_and_writes_nothing(
    client, followup, owner
):
    client.force_login(owner)

    response = client.post(
        reverse("followups:reply", args=[followup.pk]),
        {"subject": "Your refund", "body": "   "},
    )

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not FollowUpMessage.objects.exists()
    followup.refresh_from_db()
    assert (followup.status, followup.first_contact_at) == (FollowUpStatus.NEW, None)


@pytest.mark.parametrize(
    ("column", "says"), [("bounced_at", "bounced"), ("complained_at", "spam")]
)
def test_it_refuses_an_address_that_bounced_or_complained(
    client, followup, owner, column, says, mailoutbox
):
    setattr(followup.customer, column, timezone.now())
    followup.customer.save()
    client.force_login(owner)

    page = client.get(followup.get_absolute_url()).content.decode()
    response = client.post(
        reverse("followups:reply", args=[followup.pk]),
        {"subject": "Your refund", "body": "We refunded you."},
        follow=True,
    )

    assert 'id="reply-refusal"' in page and 'id="reply-form"' not in page
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not FollowUpMessage.objects.exists()
    assert FollowUp.objects.get(pk=followup.pk).first_contact_at is None
    assert mailoutbox == []


def test_it_replies_to_a_customer_who_unsubscribed_from_surveys(
    followup, owner, mailoutbox, django_capture_on_commit_callbacks
):
    followup.customer.unsubscribed_at = timezone.now()
    followup.customer.save()

    with django_capture_on_commit_callbacks(execute=True):
        send(followup, owner)

    assert len(mailoutbox) == 1


def test_it_refuses_a_reply_on_a_resolved_followup(followup, owner):
    FollowUp.objects.filter(pk=followup.pk).update(
        status=FollowUpStatus.CLOSED, closed_at=timezone.now()
    )

    with pytest.raises(ValidationError):
        send(followup, owner)

    assert not FollowUpMessage.objects.exists()


def test_it_lets_only_who_may_work_the_followup_reply(client, followup):
    from cxm.followups.models import Team

    other_team = Team.objects.create(name="Busan")
    FollowUp.objects.filter(pk=followup.pk).update(team=other_team)
    url = reverse("followups:reply", args=[followup.pk])
    data = {"subject": "Hi", "body": "Hello"}

    client.force_login(agent())
    assert client.post(url, data).status_code == 404
    client.force_login(UserFactory())
    assert client.post(url, data).status_code == 403
    assert not FollowUpMessage.objects.exists()


# Sending: the row is the truth


def test_the_sweep_sends_a_reply_whose_task_was_lost_once(followup, owner, mailoutbox):
    # No on-commit callbacks run here: the task's message is "lost".
    message = send(followup, owner)
    assert mailoutbox == []

    assert followups_sweep()["messages"] == 0  # the task may still come
    later = timezone.now() + timedelta(minutes=3)
    assert followups_sweep(now=later)["messages"] == 1
    assert followups_sweep(now=later)["messages"] == 0

    [email] = to_customer(mailoutbox, followup)
    assert email.extra_headers["Message-ID"] == message.message_id
    assert FollowUpMessage.objects.get(pk=message.pk).sent_at is not None


def test_a_refused_send_is_counted_and_tried_again_with_the_same_message_id(
    settings, monkeypatch, followup, owner, mailoutbox
):
    settings.EMAIL_BACKEND = "tests.email_backends.RefusingBackend"
    monkeypatch.setattr(
        email_backends.RefusingBackend, "refused", {followup.customer.email}
    )
    message = send(followup, owner)
    later = timezone.now() + timedelta(minutes=3)

    assert followups_sweep(now=later)["messages"] == 0
    message.refresh_from_db()
    assert (message.attempts, message.sent_at) == (1, None)
    assert "No such user" in message.last_error
    assert message.due_at > later

    monkeypatch.setattr(email_backends.RefusingBackend, "refused", set())
    assert followups_sweep(now=message.due_at + timedelta(minutes=3))["messages"] == 1
    [email] = to_customer(mailoutbox, followup)
    assert email.extra_headers["Message-ID"] == message.message_id


def test_it_raises_no_500_when_the_mail_server_is_down(
    settings, client, followup, owner, django_capture_on_commit_callbacks
):
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("followups:reply", args=[followup.pk]),
            {"subject": "Your refund", "body": "We refunded you."},
        )

    assert response.status_code == 302
    message = FollowUpMessage.objects.get()
    assert (message.sent_at, message.attempts) == (None, 1)


# The customer's answer, posted back by the email service


@pytest.fixture
def mailgun(settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    settings.ANYMAIL_WEBHOOK_SECRET = BASIC_AUTH


def customer_email(
    *, to: str, sender: str, in_reply_to: str = "", message_id: str | None = None
) -> str:
    headers = [
        f"From: {sender}",
        f"To: {to}",
        "Subject: Re: Your refund",
        f"Message-ID: {message_id or make_msgid(domain='mail.example.com')}",
    ]
    if in_reply_to:
        headers.append(f"In-Reply-To: {in_reply_to}")
    return (
        "\r\n".join(headers)
        + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "Thank you, the refund arrived.\r\n"
    )


def post_inbound(client, mime: str, *, recipient: str, key: str = SIGNING_KEY):
    """Mailgun's forward() of a received email (raw MIME), signed as Mailgun does."""
    timestamp, token = str(int(time.time())), hashlib.sha256(mime.encode()).hexdigest()
    signature = hmac.new(
        key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return client.post(
        reverse("anymail:mailgun_inbound_webhook"),
        {
            "timestamp": timestamp,
            "token": token,
            "signature": signature,
            "recipient": recipient,
            "sender": "customer@example.com",
            "body-mime": mime,
        },
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(BASIC_AUTH.encode()).decode(),
    )


def test_the_customers_answer_lands_on_the_followups_timeline(
    client, mailgun, followup, owner, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        sent = send(followup, owner)
    followup_wait_on_customer(followup=followup, actor=owner)
    mailoutbox.clear()
    address = f"replies+{sent.token}@cx.example.com"
    mime = customer_email(to=address, sender=followup.customer.email)

    with django_capture_on_commit_callbacks(execute=True):
        response = post_inbound(client, mime, recipient=address)

    assert response.status_code == 200
    received = FollowUpMessage.objects.get(direction=MessageDirection.IN)
    assert received.followup_id == followup.pk
    assert received.body == "Thank you, the refund arrived."
    assert received.from_email == followup.customer.email
    assert received.in_reply_to == sent.message_id
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.CONTACTED
    replied = followup.events.get(kind=EventKind.REPLIED)
    assert replied.description() == "Thank you, the refund arrived."
    [notice] = mailoutbox
    assert notice.to == [owner.email]
    assert f"#{followup.pk}" in notice.subject

    # The service posting it again (a retry) records nothing more.
    assert post_inbound(client, mime, recipient=address).status_code == 200
    assert FollowUpMessage.objects.filter(direction="in").count() == 1


def test_it_matches_an_answer_by_in_reply_to_without_the_plus_address(
    client, settings, mailgun, followup, owner
):
    sent = send(followup, owner)
    settings.FOLLOWUP_REPLY_ADDRESS = ""
    mime = customer_email(
        to="cx@cx.example.com",
        sender=followup.customer.email,
        in_reply_to=sent.message_id,
    )

    assert post_inbound(client, mime, recipient="cx@cx.example.com").status_code == 200

    assert FollowUpMessage.objects.filter(direction="in", followup=followup).exists()


def test_it_ignores_mail_that_answers_none_of_ours(client, mailgun, followup, owner):
    send(followup, owner)
    events_before = followup.events.count()
    unknown = "replies+" + "0" * 32 + "@cx.example.com"

    for to in (unknown, "sales@cx.example.com"):
        mime = customer_email(to=to, sender="someone@example.com")
        assert post_inbound(client, mime, recipient=to).status_code == 200

    assert not FollowUpMessage.objects.filter(direction="in").exists()
    assert followup.events.count() == events_before


def test_it_refuses_an_unsigned_inbound_post(client, mailgun, followup, owner):
    sent = send(followup, owner)
    address = f"replies+{sent.token}@cx.example.com"
    mime = customer_email(to=address, sender=followup.customer.email)

    response = post_inbound(client, mime, recipient=address, key="wrong-key")

    assert response.status_code == 400
    assert not FollowUpMessage.objects.filter(direction="in").exists()


def test_an_answer_after_resolution_is_recorded_without_reopening(
    client, mailgun, followup, owner
):
    sent = send(followup, owner)
    FollowUp.objects.filter(pk=followup.pk).update(
        status=FollowUpStatus.CLOSED, closed_at=timezone.now()
    )
    address = f"replies+{sent.token}@cx.example.com"

    post_inbound(
        client,
        customer_email(to=address, sender=followup.customer.email),
        recipient=address,
    )

    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.CLOSED
    assert followup.events.filter(kind=EventKind.REPLIED).exists()


def test_the_admin_shows_the_emails_read_only(client, followup, owner):
    send(followup, owner, subject="Your refund")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:followups_followup_change", args=[followup.pk]))

    assert page.status_code == 200
    body = page.content.decode()
    assert "To the customer · " in body and "Your refund · not sent" in body
    assert 'name="subject"' not in body
