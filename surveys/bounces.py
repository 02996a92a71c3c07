"""
Bounces and complaints: what says an invitation's address should not be emailed
again. A refusal while sending (SMTP's 550, anymail's AnymailRecipientsRefused)
comes through invitations_deliver; one that arrives later comes through an email
service's tracking webhook, which django-anymail turns into its `tracking` signal
(tracking_received, connected in SurveysConfig.ready).

Each write is conditional, so the same event twice (a service retrying its
webhook) changes nothing more.
"""

import logging
import re

from anymail.signals import EventType, RejectReason
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from cxm.customers.models import Customer
from cxm.customers.services import (
    customer_mark_bounced,
    customer_mark_complained,
    customer_unsubscribe,
)

from .models import Invitation, InvitationStatus

logger = logging.getLogger(__name__)

# What services.invitation_message_id gives an invitation's email.
MESSAGE_ID = re.compile(r"<invitation-(?P<pk>[0-9]+)-(?P<campaign>[0-9]+)@[^>]+>")
# The metadata key invitation_message attaches (a service returns it with each
# event: Mailgun's user-variables, Postmark's Metadata, SendGrid's custom_args …).
METADATA_KEY = "invitation"
# Rejections that say the address itself is bad, not that the service is unhappy.
BAD_ADDRESS = {RejectReason.BOUNCED, RejectReason.INVALID}


def invitation_bounce(*, invitation_id: int, customer_id: int, reason: str) -> None:
    """
    Marks an invitation bounced (one being sent or sent; an answered one keeps its
    state) and its customer bounced, so no campaign emails the address again.
    """
    with transaction.atomic():
        Invitation.objects.filter(
            pk=invitation_id,
            status__in=[InvitationStatus.SENDING, InvitationStatus.SENT],
        ).update(status=InvitationStatus.BOUNCED, last_error=reason[:2000])
        customer_mark_bounced(customer_id=customer_id)


def invitation_complain(*, invitation_id: int | None, customer_id: int) -> None:
    """
    Records that the customer reported the invitation's email (or, without one,
    any of ours) as spam, and suppresses the customer for good.
    """
    with transaction.atomic():
        if invitation_id is not None:
            Invitation.objects.filter(
                pk=invitation_id, complained_at__isnull=True
            ).update(complained_at=timezone.now())
        customer_mark_complained(customer_id=customer_id)


def _invitation_of(event) -> Invitation | None:
    """
    Returns the invitation a tracking event is about: by the metadata the email
    carried, else by its Message-ID (when the service reports ours), else None.
    """
    invitations = Invitation.objects.select_related("customer")
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    if str(metadata.get(METADATA_KEY, "")).isdigit():
        return invitations.filter(pk=int(metadata[METADATA_KEY])).first()
    if match := MESSAGE_ID.fullmatch((event.message_id or "").strip()):
        return invitations.filter(
            pk=int(match["pk"]), campaign_id=int(match["campaign"])
        ).first()
    return None


def _customer_of(event, invitation: Invitation | None) -> Customer | None:
    if invitation is not None:
        return invitation.customer
    if not event.recipient:
        return None
    return (
        Customer.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=event.recipient.strip().lower())
        .first()
    )


def tracking_event_record(*, event, esp_name: str) -> None:
    """
    Applies an email service's tracking event (anymail's AnymailTrackingEvent):
    bounced (or rejected as a bad address) → the invitation and its customer
    bounced; complained → the complaint recorded and the customer suppressed;
    unsubscribed → the customer unsubscribed. Other events change nothing.
    """
    kind = event.event_type
    bounce = kind == EventType.BOUNCED or (
        kind == EventType.REJECTED and event.reject_reason in BAD_ADDRESS
    )
    if not (bounce or kind in (EventType.COMPLAINED, EventType.UNSUBSCRIBED)):
        return
    invitation = _invitation_of(event)
    customer = _customer_of(event, invitation)
    if customer is None:
        logger.info(
            "%s %s event for no customer of ours (%s)",
            esp_name,
            kind,
            event.recipient or event.message_id,
        )
        return
    if bounce:
        reason = event.mta_response or event.description or f"{esp_name}: {kind}"
        if invitation is not None:
            invitation_bounce(
                invitation_id=invitation.pk, customer_id=customer.pk, reason=reason
            )
        else:
            customer_mark_bounced(customer_id=customer.pk)
    elif kind == EventType.COMPLAINED:
        invitation_complain(
            invitation_id=invitation.pk if invitation else None,
            customer_id=customer.pk,
        )
    else:
        customer_unsubscribe(customer=customer)


def tracking_received(sender, event, esp_name, **kwargs) -> None:
    """anymail's `tracking` signal: a webhook of an email service posted an event."""
    tracking_event_record(event=event, esp_name=esp_name)
