"""
Closing the loop with the customer by email: the reply an agent writes from the
follow-up page, the customer's answer an email service posts back (django-
anymail's `inbound` signal), and the recovery check-in after resolution.

Each email to the customer is a FollowUpMessage row first; a task sends it on
commit and the sweep (services.followups_sweep) sends one whose task was lost,
with the same Message-ID, so a resend shows once in the customer's mailbox.

Who may be written to:
- A reply answers the customer's own complaint: it is transactional and goes to
  a customer who unsubscribed from surveys, but never to an address that bounced
  or whose owner reported our email as spam (refused with a message).
- The check-in asks a question, like a survey: it goes only to a customer we may
  email (Customer.is_contactable), checked again when it is due.
"""

import logging
import re
import smtplib
from datetime import timedelta
from urllib.parse import urlsplit

from anymail.exceptions import AnymailError
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import strip_tags
from django.utils.translation import gettext as _

from cxm import emails
from cxm.customers.models import Customer

from .models import (
    ContactChannel,
    EventKind,
    FollowUp,
    FollowUpMessage,
    FollowUpNotice,
    FollowUpStatus,
    MessageDirection,
    MessageKind,
    NoticeKind,
)

logger = logging.getLogger(__name__)

SUBJECT_MAX = 255
BODY_MAX = 20_000
# An email not sent after this many tries is left for a person to look at.
MESSAGE_MAX_ATTEMPTS = 5
# The statuses a check-in goes out in: resolved, and closed after it.
CHECKIN_STATUSES = (FollowUpStatus.RESOLVED, FollowUpStatus.CLOSED)
MESSAGE_ID = re.compile(r"<[^<>\s]+>")


def message_id_of(token: str) -> str:
    """The Message-ID of our email with this token: the same on every attempt."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<followup-{token}@{host}>"


def reply_address_of(token: str) -> str:
    """Where the customer's answer to our email goes: FOLLOWUP_REPLY_ADDRESS's."""
    if settings.FOLLOWUP_REPLY_ADDRESS:
        return settings.FOLLOWUP_REPLY_ADDRESS.replace("{token}", token)
    return settings.EMAIL_REPLY_TO


def _reply_address_pattern() -> re.Pattern | None:
    if not settings.FOLLOWUP_REPLY_ADDRESS:
        return None
    before, after = settings.FOLLOWUP_REPLY_ADDRESS.split("{token}", 1)
    return re.compile(
        re.escape(before) + r"(?P<token>[0-9a-f]{32})" + re.escape(after),
        re.IGNORECASE,
    )


# The reply


def followup_reply_draft(*, followup: FollowUp, actor) -> tuple[str, str]:
    """
    Returns the subject and body a reply starts from, in the customer's language,
    signed by `actor` for the company (COMPANY_NAME).
    """
    customer = followup.customer
    context = {
        "customer": customer,
        "followup": followup,
        "agent_name": (actor.get_full_name() or actor.get_username()) if actor else "",
        "COMPANY_NAME": settings.COMPANY_NAME,
    }
    with translation.override(customer.locale or settings.LANGUAGE_CODE):
        subject = " ".join(
            render_to_string("followups/reply-draft-subject.txt", context).split()
        )
        body = render_to_string("followups/reply-draft-body.txt", context).strip()
    return subject, body


def reply_refusal(customer: Customer) -> str:
    """Why no reply may be emailed to the customer, or "" if one may."""
    if not customer.email:
        return _("The customer has no email address.")
    if customer.bounced_at is not None:
        return _(
            "The customer's address bounced: emails to it do not arrive. "
            "Contact them another way and log the contact."
        )
    if customer.complained_at is not None:
        return _(
            "The customer reported one of our emails as spam: we do not email "
            "them any more. Contact them another way and log the contact."
        )
    return ""


def followup_reply_send(
    *, followup: FollowUp, actor, subject: str, body: str
) -> FollowUpMessage:
    """
    Records a reply email to the customer, sent on commit: the first contact (as
    services.followup_log_contact, on the timeline) and a FollowUpMessage whose
    Reply-To brings the customer's answer back to this follow-up.
    """
    from .services import followup_log_contact

    subject = " ".join((subject or "").split())
    body = (body or "").strip()
    errors = {}
    if not subject:
        errors["subject"] = _("Write a subject.")
    elif len(subject) > SUBJECT_MAX:
        errors["subject"] = _("Keep the subject under %(max)d characters.") % {
            "max": SUBJECT_MAX
        }
    if not body:
        errors["body"] = _("Write the email first.")
    elif len(body) > BODY_MAX:
        errors["body"] = _("Keep the email under %(max)d characters.") % {
            "max": BODY_MAX
        }
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        # Locks the follow-up and refuses one that is no longer open.
        followup_log_contact(
            followup=followup,
            actor=actor,
            channel=ContactChannel.EMAIL,
            note=f"{subject}\n\n{body}",
        )
        customer = Customer.objects.get(pk=followup.customer_id)
        if refusal := reply_refusal(customer):
            raise ValidationError(refusal, code="suppressed")
        last_in = (
            FollowUpMessage.objects.filter(
                followup_id=followup.pk, direction=MessageDirection.IN
            )
            .exclude(message_id="")
            .order_by("-created_at", "-pk")
            .values_list("message_id", flat=True)
            .first()
        )
        message = FollowUpMessage(
            followup_id=followup.pk,
            direction=MessageDirection.OUT,
            kind=MessageKind.REPLY,
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to_email=customer.email,
            in_reply_to=last_in or "",
            created_by=actor,
            created_at=now,
            due_at=now,
        )
        message.message_id = message_id_of(message.token)
        message.save()
        _send_on_commit(message)
    return message


def _send_on_commit(message: FollowUpMessage) -> None:
    from . import tasks

    pk = message.pk
    # robust: a broker that is down must not fail the request; the sweep sends.
    transaction.on_commit(lambda: tasks.followup_message_send.delay(pk), robust=True)


def _email_of(message: FollowUpMessage):
    followup = message.followup
    customer = followup.customer
    context = {"message": message, "followup": followup, "customer": customer}
    if message.kind == MessageKind.CHECKIN:
        link = settings.SITE_URL + reverse("followups:checkin", args=[message.token])
        context.update(
            link=link, yes_link=f"{link}?answer=yes", no_link=f"{link}?answer=no"
        )
    headers = {"Message-ID": message.message_id}
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
        headers["References"] = message.in_reply_to
    email = emails.build(
        f"followup-{message.kind}",
        to=[message.to_email],
        context=context,
        language=customer.locale,
        headers=headers,
    )
    if reply_to := reply_address_of(message.token):
        email.reply_to = [reply_to]
    return email


def followup_message_send(*, message_id: int, now=None) -> bool:
    """
    Emails an outgoing message that is due and unsent, once; returns whether it
    sent. A check-in whose follow-up was reopened, or whose customer may no
    longer be emailed, is dropped unsent. A failure is counted and retried later.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            message = (
                FollowUpMessage.objects.select_for_update(
                    skip_locked=True, of=("self",)
                )
                .select_related("followup__customer")
                .filter(
                    pk=message_id,
                    direction=MessageDirection.OUT,
                    sent_at__isnull=True,
                    due_at__lte=now,
                )
                .first()
            )
            if message is None:
                return False
            followup = message.followup
            if message.kind == MessageKind.CHECKIN and (
                followup.status not in CHECKIN_STATUSES
                or not followup.customer.is_contactable
                or followup.checkin_sent_at is not None
            ):
                logger.info("Follow-up %s: check-in dropped unsent", followup.pk)
                message.delete()
                return False
            emails.send_message(_email_of(message))
            sent = timezone.now()
            message.sent_at = sent
            message.attempts += 1
            message.save(update_fields=["sent_at", "attempts"])
            if message.kind == MessageKind.CHECKIN:
                FollowUp.objects.filter(pk=followup.pk).update(checkin_sent_at=sent)
                _event(followup, EventKind.CHECKIN_SENT, text=message.to_email)
    except (smtplib.SMTPException, OSError, AnymailError) as e:
        logger.warning("Follow-up message %s not sent: %s", message_id, e)
        tried = (
            FollowUpMessage.objects.filter(pk=message_id)
            .values_list("attempts", flat=True)
            .first()
        )
        # Backs off 2, 4, 8 … minutes; the sweep tries again when it is due.
        FollowUpMessage.objects.filter(pk=message_id, sent_at__isnull=True).update(
            attempts=F("attempts") + 1,
            last_error=str(e)[:2000],
            due_at=now + timedelta(minutes=2 ** ((tried or 0) + 1)),
        )
        return False
    return True


def followup_messages_due(*, now) -> list[int]:
    """The outgoing messages the sweep sends: due, unsent, not given up on."""
    from .services import NOTIFY_GRACE, SWEEP_BATCH

    # A reply is sent by its own task on commit: the grace leaves it that task. A
    # check-in has no task: the sweep sends it when it is due.
    return list(
        FollowUpMessage.objects.filter(
            Q(kind=MessageKind.CHECKIN, due_at__lte=now)
            | Q(due_at__lt=now - NOTIFY_GRACE),
            direction=MessageDirection.OUT,
            sent_at__isnull=True,
            attempts__lt=MESSAGE_MAX_ATTEMPTS,
        )
        .order_by("due_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )


def _event(followup, kind, **kwargs):
    from .services import _event as event

    return event(followup, kind, **kwargs)


def _notice(followup: FollowUp, kind: str) -> None:
    """Tells the follow-up's owner (else who resolved it) by a FollowUpNotice."""
    from .services import _notice_on_commit

    recipient = followup.owner or followup.resolved_by
    if recipient is None or not recipient.is_active:
        return
    notice = FollowUpNotice.objects.create(
        followup=followup, kind=kind, recipient=recipient, new_owner=followup.owner
    )
    _notice_on_commit(notice)


# The customer's email, posted back


def _addresses(message) -> list[str]:
    found = [message.envelope_recipient or ""]
    for header in ("To", "Cc", "Delivered-To", "X-Original-To"):
        found += [a.addr_spec for a in message.get_address_header(header)]
    return [a for a in found if a]


def _followup_of_inbound(message) -> FollowUpMessage | None:
    """Returns our email the inbound one answers: by Reply-To token, else headers."""
    ours = FollowUpMessage.objects.select_related("followup").filter(
        direction=MessageDirection.OUT
    )
    if pattern := _reply_address_pattern():
        for address in _addresses(message):
            if match := pattern.fullmatch(address.strip()):
                found = ours.filter(token=match["token"].lower()).first()
                if found is not None:
                    return found
    ids = MESSAGE_ID.findall(
        f"{message.get('In-Reply-To', '')} {message.get('References', '')}"
    )
    if ids:
        return ours.filter(message_id__in=ids).order_by("-pk").first()
    return None


def _text_of(message) -> str:
    text = message.stripped_text or message.text
    if not text and message.html:
        text = strip_tags(message.html)
    return (text or "").strip()[:BODY_MAX]


def followup_inbound_record(*, message, esp_name: str = "") -> FollowUpMessage | None:
    """
    Records an email the customer sent us (anymail's AnymailInboundMessage) on the
    follow-up whose email it answers, once per Message-ID: a follow-up waiting on
    the customer is theirs to act on again (contacted), and its owner is told.
    Returns None, writing nothing, for mail that answers none of ours.
    """
    answered = _followup_of_inbound(message)
    if answered is None:
        logger.info(
            "%s inbound email from %s matches no follow-up; ignored",
            esp_name or "An",
            message.envelope_sender or message.get("From", ""),
        )
        return None
    message_id = (message.get("Message-ID") or "").strip()[:255]
    if message_id and FollowUpMessage.objects.filter(message_id=message_id).exists():
        return None  # posted again
    sender = message.from_email.addr_spec if message.from_email else ""
    now = timezone.now()
    try:
        with transaction.atomic():
            followup = (
                FollowUp.objects.select_for_update(of=("self",))
                .select_related("owner", "resolved_by")
                .get(pk=answered.followup_id)
            )
            received = FollowUpMessage.objects.create(
                followup=followup,
                direction=MessageDirection.IN,
                kind=MessageKind.INBOUND,
                subject=" ".join((message.subject or "").split())[:SUBJECT_MAX],
                body=_text_of(message),
                from_email=sender[:320],
                to_email=(message.envelope_recipient or "")[:320],
                message_id=message_id,
                in_reply_to=answered.message_id,
                created_at=now,
            )
            _event(
                followup,
                EventKind.REPLIED,
                now=now,
                text=received.body or received.subject,
                data={"from": sender},
            )
            if followup.status == FollowUpStatus.WAITING:
                followup.status = FollowUpStatus.CONTACTED
                followup.save(update_fields=["status"])
                _event(
                    followup,
                    EventKind.STATUS_CHANGED,
                    now=now,
                    data={"status": FollowUpStatus.CONTACTED},
                )
            _notice(followup, NoticeKind.REPLIED)
    except IntegrityError:
        return None  # the same email, recorded by a request racing this one
    return received


def inbound_received(sender, event, esp_name, **kwargs) -> None:
    """anymail's `inbound` signal: an email service posted an email it received."""
    followup_inbound_record(message=event.message, esp_name=esp_name)


# The recovery check-in


def followup_checkin_schedule(*, followup: FollowUp, now) -> FollowUpMessage | None:
    """
    Writes the check-in due FOLLOWUP_CHECKIN_HOURS after a resolution (none when
    the setting is 0, the customer may not be emailed, or the follow-up had one).
    Call inside the transaction that resolves.
    """
    hours = settings.FOLLOWUP_CHECKIN_HOURS
    if not hours or followup.checkin_sent_at is not None:
        return None
    customer = Customer.objects.get(pk=followup.customer_id)
    if not customer.email or not customer.is_contactable:
        return None
    if FollowUpMessage.objects.filter(
        followup_id=followup.pk, kind=MessageKind.CHECKIN
    ).exists():
        return None  # resolved again before the first one went out
    with translation.override(customer.locale or settings.LANGUAGE_CODE):
        subject = _("Did we resolve your issue?")
    message = FollowUpMessage(
        followup_id=followup.pk,
        direction=MessageDirection.OUT,
        kind=MessageKind.CHECKIN,
        subject=subject,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to_email=customer.email,
        created_at=now,
        due_at=now + timedelta(hours=hours),
    )
    message.message_id = message_id_of(message.token)
    message.save()
    return message


def checkin_open(*, token: str) -> FollowUpMessage | None:
    """Returns the sent check-in with this token (and its follow-up), or None."""
    if not re.fullmatch(r"[0-9a-f]{32}", token or ""):
        return None
    return (
        FollowUpMessage.objects.select_related("followup__customer")
        .filter(token=token, kind=MessageKind.CHECKIN, sent_at__isnull=False)
        .first()
    )


def checkin_changeable(followup: FollowUp, now=None) -> bool:
    """True while the customer may (still) answer the check-in."""
    if followup.recovered_at is None:
        return True
    window = timedelta(hours=settings.FOLLOWUP_CHECKIN_CHANGE_HOURS)
    return (now or timezone.now()) < followup.recovered_at + window


def followup_checkin_answer(*, checkin: FollowUpMessage, recovered: bool) -> FollowUp:
    """
    Records the customer's answer to the check-in: recovered or not, on the
    timeline. They may change it for FOLLOWUP_CHECKIN_CHANGE_HOURS (a mis-tap),
    then it stands. A "no" tells the owner (else who resolved it).
    """
    now = timezone.now()
    with transaction.atomic():
        followup = (
            FollowUp.objects.select_for_update(of=("self",))
            .select_related("owner", "resolved_by")
            .get(pk=checkin.followup_id)
        )
        if followup.recovered is recovered:
            return followup
        if not checkin_changeable(followup, now):
            raise ValidationError(
                _("You answered this already. Thank you."), code="conflict"
            )
        first = followup.recovered is None
        followup.recovered = recovered
        if first:
            followup.recovered_at = now
        followup.save(update_fields=["recovered", "recovered_at"])
        _event(
            followup, EventKind.CHECKIN_ANSWERED, now=now, data={"recovered": recovered}
        )
        if not recovered:
            _notice(followup, NoticeKind.NOT_RECOVERED)
    return followup
