"""
Bounces and complaints: an email service refusing a recipient while sending, and
the bounces, complaints and unsubscribes it reports later through its tracking
webhook (Mailgun's, signed, as the service posts it).
"""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.urls import reverse

from cxm.customers.models import Customer
from surveys.models import Invitation, InvitationStatus
from surveys.services import invitation_message_id, invitations_deliver
from tests import email_backends
from tests.factories import CustomerFactory, InvitationFactory

pytestmark = pytest.mark.django_db

SIGNING_KEY = "key-mailgun-webhook-signing"
BASIC_AUTH = "mailgun:webhook-password"


# Refused while sending


def test_it_bounces_a_recipient_the_email_service_refuses_and_never_retries_it(
    settings,
    monkeypatch,
):
    settings.EMAIL_BACKEND = "tests.email_backends.AnymailRefusingBackend"
    refused, accepted = InvitationFactory(), InvitationFactory()
    monkeypatch.setattr(
        email_backends.AnymailRefusingBackend, "refused", {refused.customer.email}
    )

    assert invitations_deliver(invitation_ids=[refused.pk, accepted.pk]) == 1

    refused.refresh_from_db()
    assert refused.status == InvitationStatus.BOUNCED
    assert refused.attempts == 1
    assert "rejected" in refused.last_error
    assert Customer.objects.get(pk=refused.customer_id).bounced_at is not None
    assert Invitation.objects.get(pk=accepted.pk).status == InvitationStatus.SENT
    assert Customer.objects.get(pk=accepted.customer_id).is_contactable

    # Delivery again (a sweep, a duplicate message) leaves it alone.
    assert invitations_deliver(invitation_ids=[refused.pk]) == 0
    refused.refresh_from_db()
    assert (refused.status, refused.attempts) == (InvitationStatus.BOUNCED, 1)


def test_it_tells_the_email_service_which_invitation_an_email_is(settings, mailoutbox):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    invitation = InvitationFactory()

    invitations_deliver(invitation_ids=[invitation.pk])

    [message] = mailoutbox
    assert message.anymail_test_params["metadata"] == {"invitation": str(invitation.pk)}


def test_it_does_not_email_a_customer_who_complained(mailoutbox):
    invitation = InvitationFactory()
    Customer.objects.filter(pk=invitation.customer_id).update(
        complained_at="2025-01-01T00:00:00Z"
    )

    assert invitations_deliver(invitation_ids=[invitation.pk]) == 0

    assert mailoutbox == []
    held = Invitation.objects.get(pk=invitation.pk)
    assert (held.status, held.skip_reason) == (InvitationStatus.SKIPPED, "complained")


# Reported later: Mailgun's tracking webhook


@pytest.fixture
def mailgun(settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    settings.ANYMAIL_WEBHOOK_SECRET = BASIC_AUTH


def signed(event_data: dict, *, key: str = SIGNING_KEY) -> dict:
    """A Mailgun webhook body, signed as Mailgun signs it (HMAC-SHA256)."""
    timestamp = str(int(time.time()))
    token = hashlib.sha256(json.dumps(event_data).encode()).hexdigest()[:50]
    signature = hmac.new(
        key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event_data,
    }


def event_about(invitation, event: str, **fields) -> dict:
    """Mailgun's event-data for an email of the invitation, as cxm sent it."""
    return {
        "event": event,
        "timestamp": time.time(),
        "recipient": invitation.customer.email,
        "message": {
            "headers": {"message-id": invitation_message_id(invitation=invitation)}
        },
        "user-variables": {"invitation": str(invitation.pk)},
        **fields,
    }


def post(client, body: dict, *, auth: str | None = BASIC_AUTH):
    headers = {}
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(
            auth.encode()
        ).decode("ascii")
    return client.post(
        reverse("anymail:mailgun_tracking_webhook"),
        data=json.dumps(body),
        content_type="application/json",
        **headers,
    )


def sent_invitation() -> Invitation:
    invitation = InvitationFactory()
    invitations_deliver(invitation_ids=[invitation.pk])
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.SENT
    return invitation


def bounce(invitation) -> dict:
    return event_about(
        invitation,
        "failed",
        severity="permanent",
        reason="bounce",
        **{"delivery-status": {"message": "550 5.1.1 No such user", "code": 550}},
    )


def test_it_bounces_the_invitation_and_the_customer_on_a_bounce_event(
    client, mailgun, mailoutbox
):
    invitation = sent_invitation()

    assert post(client, signed(bounce(invitation))).status_code == 200

    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.BOUNCED
    assert invitation.last_error == "550 5.1.1 No such user"
    assert not Customer.objects.get(pk=invitation.customer_id).is_contactable


def test_it_records_a_complaint_and_suppresses_the_customer(
    client, mailgun, mailoutbox
):
    invitation = sent_invitation()

    response = post(client, signed(event_about(invitation, "complained")))

    assert response.status_code == 200
    invitation.refresh_from_db()
    assert invitation.complained_at is not None
    assert invitation.status == InvitationStatus.SENT  # it was delivered
    customer = Customer.objects.get(pk=invitation.customer_id)
    assert customer.complained_at is not None
    assert customer.bounced_at is None
    assert not Customer.objects.contactable().filter(pk=customer.pk).exists()


def test_it_unsubscribes_the_customer_on_an_unsubscribe_event(
    client, mailgun, mailoutbox
):
    invitation = sent_invitation()

    response = post(client, signed(event_about(invitation, "unsubscribed")))

    assert response.status_code == 200
    customer = Customer.objects.get(pk=invitation.customer_id)
    assert customer.unsubscribed_at is not None
    assert (customer.bounced_at, customer.complained_at) == (None, None)
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.SENT


def test_it_changes_nothing_more_when_the_same_event_comes_twice(
    client, mailgun, mailoutbox
):
    invitation = sent_invitation()
    events = [bounce(invitation), event_about(invitation, "complained")]
    for event in events:
        post(client, signed(event))

    def state():
        customer = Customer.objects.get(pk=invitation.customer_id)
        row = Invitation.objects.get(pk=invitation.pk)
        return (
            customer.bounced_at,
            customer.complained_at,
            customer.updated_at,
            row.status,
            row.complained_at,
            row.last_error,
        )

    before = state()
    for event in events:
        assert post(client, signed(event)).status_code == 200

    assert state() == before


def test_it_finds_the_invitation_by_its_message_id_without_metadata(
    client, mailgun, mailoutbox
):
    invitation = sent_invitation()
    event = bounce(invitation)
    del event["user-variables"]

    post(client, signed(event))

    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.BOUNCED


def test_it_suppresses_a_customer_known_only_by_the_recipient_address(client, mailgun):
    customer = CustomerFactory(email="Someone@Example.com")
    other = sent_invitation()
    event = {
        "event": "complained",
        "timestamp": time.time(),
        "recipient": "someone@example.com",
        "message": {"headers": {"message-id": "<20250101.abc@mailgun.example>"}},
    }

    assert post(client, signed(event)).status_code == 200

    assert Customer.objects.get(pk=customer.pk).complained_at is not None
    assert Customer.objects.get(pk=other.customer_id).is_contactable


def test_it_ignores_a_temporary_failure(client, mailgun, mailoutbox):
    invitation = sent_invitation()
    event = bounce(invitation) | {"severity": "temporary"}

    assert post(client, signed(event)).status_code == 200

    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.SENT
    assert Customer.objects.get(pk=invitation.customer_id).is_contactable


@pytest.mark.parametrize(
    "body, auth",
    [
        pytest.param("wrong key", BASIC_AUTH, id="badly signed"),
        pytest.param("unsigned", BASIC_AUTH, id="unsigned"),
        pytest.param("signed", None, id="no password"),
        pytest.param("signed", "mailgun:guess", id="wrong password"),
    ],
)
def test_it_refuses_a_post_that_is_not_mailguns_and_changes_nothing(
    client, mailgun, mailoutbox, body, auth
):
    invitation = sent_invitation()
    event = bounce(invitation)
    payload = {
        "wrong key": signed(event, key="key-someone-else"),
        "unsigned": {"event-data": event},
        "signed": signed(event),
    }[body]

    response = post(client, payload, auth=auth)

    assert response.status_code == 400
    assert Invitation.objects.get(pk=invitation.pk).status == InvitationStatus.SENT
    assert Customer.objects.get(pk=invitation.customer_id).is_contactable


def test_it_refuses_every_webhook_while_no_webhook_secret_is_set(
    client, mailgun, settings, mailoutbox
):
    settings.ANYMAIL_WEBHOOK_SECRET = ""
    invitation = sent_invitation()

    response = post(client, signed(bounce(invitation)))
    # A service that signs nothing: anymail alone would take anyone's post.
    unsigned = client.post(
        reverse("anymail:postmark_tracking_webhook"),
        data=json.dumps({"RecordType": "SpamComplaint", "Email": "x@example.com"}),
        content_type="application/json",
    )

    assert (response.status_code, unsigned.status_code) == (403, 403)
    assert Customer.objects.get(pk=invitation.customer_id).is_contactable
