import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from cxm import emails
from cxm.customers.models import Customer
from cxm.customers.services import customer_mark_bounced
from cxm.utils import batched

from .models import (
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    Question,
    QuestionKind,
    Response,
    Survey,
    SurveyKind,
    audience_filter,
)
from .signals import response_recorded

logger = logging.getLogger(__name__)

# Invitations per delivery task: one SMTP connection each, a few hundred KB of
# rendered email in memory at a time.
DELIVERY_BATCH = 100
# Rows inserted per INSERT when a campaign is sent.
INSERT_BATCH = 1000
# Most invitations one sweep enqueues; the next sweep takes the rest.
SWEEP_LIMIT = 20_000
# A claim older than this belongs to a worker that died mid-batch.
STALE_CLAIM = timedelta(minutes=15)
# A queued row enqueued longer ago than this lost its message: enqueue it again.
LOST_MESSAGE = timedelta(minutes=10)
MAX_ATTEMPTS = 5


def survey_create(*, name: str, kind: str = SurveyKind.NPS) -> Survey:
    """Creates a survey with the standard questions of its kind."""
    with transaction.atomic():
        survey = Survey.objects.create(name=name, kind=kind)
        survey_add_standard_questions(survey=survey)
    return survey


def survey_add_standard_questions(*, survey: Survey) -> None:
    """Gives a survey without questions the score question and the open comment."""
    if survey.questions.exists():
        return
    Question.objects.bulk_create(
        [
            Question(survey=survey, position=1, kind=QuestionKind.SCORE, required=True),
            Question(survey=survey, position=2, kind=QuestionKind.COMMENT),
        ]
    )


def campaign_audience(*, campaign: Campaign):
    """Returns the customers a campaign would invite now."""
    return Customer.objects.contactable().filter(audience_filter(campaign.audience))


def campaign_update(*, campaign: Campaign, **fields) -> Campaign:
    """Changes a draft campaign; once it is sending or sent, it is history."""
    with transaction.atomic():
        # Locked as campaign_send locks it: a send cannot slip in between.
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != CampaignStatus.DRAFT:
            raise ValidationError(
                {"status": _("Only a draft campaign can be changed.")}
            )
        for name, value in fields.items():
            setattr(campaign, name, value)
        campaign.save(update_fields=list(fields))
    return campaign


def campaign_send(*, campaign: Campaign) -> int:
    """
    Creates one invitation per eligible customer and queues them for delivery.

    Returns how many invitations were created. Unsubscribed and bounced customers are
    skipped; a customer never gets two invitations for one campaign.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != CampaignStatus.DRAFT:
            raise ValidationError(
                _("This campaign was already sent on %(date)s.")
                % {
                    "date": timezone.localtime(campaign.sent_at).strftime(
                        "%Y-%m-%d %H:%M"
                    )
                }
            )
        if campaign.is_expired:
            raise ValidationError(
                _("This campaign has expired; change its expiry first.")
            )
        now = timezone.now()
        customer_ids = (
            campaign_audience(campaign=campaign)
            .order_by("pk")
            .values_list("pk", flat=True)
            .iterator(chunk_size=INSERT_BATCH)
        )
        invitations = Invitation.objects.filter(campaign=campaign)
        before = invitations.count()
        for batch in batched(customer_ids, INSERT_BATCH):
            # A customer already invited keeps the one invitation (the constraint).
            Invitation.objects.bulk_create(
                [
                    Invitation(campaign=campaign, customer_id=pk, due_at=now)
                    for pk in batch
                ],
                ignore_conflicts=True,
            )
        # bulk_create returns every row it was given, inserted or not: count.
        created = invitations.count() - before
        campaign.status = CampaignStatus.SENDING if created else CampaignStatus.SENT
        campaign.sent_at = now
        campaign.save(update_fields=["status", "sent_at"])
        transaction.on_commit(
            lambda: invitations_enqueue(campaign_id=campaign.pk), robust=True
        )
    return created


def invitations_enqueue(*, campaign_id: int | None = None, now=None) -> int:
    """
    Enqueues delivery tasks for due queued invitations (of one campaign, or all).

    Returns how many invitations were enqueued. A lost message is harmless: the
    next sweep finds the row still queued, and a row is claimed once however often
    it is enqueued.
    """
    from . import tasks

    now = now or timezone.now()
    due = Invitation.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=now - LOST_MESSAGE),
        status=InvitationStatus.QUEUED,
        due_at__lte=now,
    )
    if campaign_id is not None:
        due = due.filter(campaign_id=campaign_id)
    ids = list(due.order_by("due_at", "pk").values_list("pk", flat=True)[:SWEEP_LIMIT])
    for batch in batched(ids, DELIVERY_BATCH):
        tasks.invitations_send.delay(list(batch))
        # Only after the broker took the message: a failed publish leaves the rows
        # for the next sweep. Only rows still waiting: a worker may already have
        # failed one and put it back with a backoff, which this must not delay.
        Invitation.objects.filter(
            pk__in=batch, status=InvitationStatus.QUEUED, due_at__lte=now
        ).update(enqueued_at=now)
    return len(ids)


def invitations_sweep(*, now=None) -> int:
    """Requeues invitations claimed by a dead worker, then enqueues all due ones."""
    now = now or timezone.now()
    Invitation.objects.filter(
        status=InvitationStatus.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).update(status=InvitationStatus.QUEUED, claimed_at=None, enqueued_at=None)
    # An invitation answered before delivery is never delivered, so no delivery
    # finishes a campaign whose last waiting invitation it was.
    _campaigns_finish(
        campaign_ids=Campaign.objects.filter(status=CampaignStatus.SENDING).values("pk")
    )
    return invitations_enqueue(now=now)


def _invitations_claim(*, invitation_ids: list[int], now) -> list[int]:
    """Moves due queued invitations to sending; returns the ids this caller won."""
    with transaction.atomic():
        claimed = list(
            Invitation.objects.select_for_update(skip_locked=True)
            .filter(
                pk__in=invitation_ids, status=InvitationStatus.QUEUED, due_at__lte=now
            )
            .values_list("pk", flat=True)
        )
        Invitation.objects.filter(pk__in=claimed).update(
            status=InvitationStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
        )
    return claimed


def invitation_message(*, invitation: Invitation):
    """Returns the invitation email for one customer, in the customer's language."""
    survey = invitation.campaign.survey
    low, high = survey.score_range
    unsubscribe = settings.SITE_URL + reverse(
        "surveys:unsubscribe", args=[invitation.token]
    )
    link = invitation.link  # one reverse() per email, not one per score link
    return emails.build(
        "invitation",
        to=[invitation.customer.email],
        language=invitation.customer.locale,
        context={
            "invitation": invitation,
            "customer": invitation.customer,
            "question": next(
                (q for q in survey.questions.all() if q.kind == QuestionKind.SCORE),
                None,
            ),
            "link": link,
            "score_links": [(n, f"{link}?score={n}") for n in range(low, high + 1)],
            "unsubscribe_url": unsubscribe,
        },
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "X-Cxm-Invitation": str(invitation.pk),
        },
    )


def _invitation_failed(*, invitation: Invitation, error: Exception, now) -> None:
    """Puts an invitation back in the queue with a backoff, or fails it for good."""
    if invitation.attempts >= MAX_ATTEMPTS:
        status, due_at = InvitationStatus.FAILED, invitation.due_at
    else:
        status = InvitationStatus.QUEUED
        due_at = now + timedelta(minutes=2**invitation.attempts)
    Invitation.objects.filter(pk=invitation.pk, status=InvitationStatus.SENDING).update(
        status=status,
        due_at=due_at,
        claimed_at=None,
        enqueued_at=None,
        last_error=str(error)[:2000],
    )


def invitations_deliver(*, invitation_ids: list[int]) -> int:
    """
    Emails the given invitations that are due and still queued; returns how many.

    Each row is claimed (queued → sending) before its email goes out and marked sent
    right after, so running this twice, or in two workers, emails nobody twice.
    """
    now = timezone.now()
    claimed = _invitations_claim(invitation_ids=invitation_ids, now=now)
    if not claimed:
        return 0
    invitations = (
        Invitation.objects.filter(pk__in=claimed)
        .select_related("campaign__survey", "customer")
        .prefetch_related("campaign__survey__questions")
        .order_by("pk")
    )
    sent = 0
    connection = get_connection()
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as e:
        logger.warning("Cannot reach the mail server: %s", e)
        for invitation in invitations:
            _invitation_failed(invitation=invitation, error=e, now=now)
        # A last attempt failed for good may leave its campaign nothing to wait for.
        _campaigns_finish(campaign_ids={i.campaign_id for i in invitations})
        return 0
    try:
        for invitation in invitations:
            if not invitation.customer.is_contactable or invitation.campaign.is_expired:
                Invitation.objects.filter(
                    pk=invitation.pk, status=InvitationStatus.SENDING
                ).update(status=InvitationStatus.FAILED, last_error="not contactable")
                continue
            try:
                message = invitation_message(invitation=invitation)
                message.connection = connection
                message.send()
            except smtplib.SMTPRecipientsRefused as e:
                Invitation.objects.filter(
                    pk=invitation.pk, status=InvitationStatus.SENDING
                ).update(status=InvitationStatus.BOUNCED, last_error=str(e)[:2000])
                customer_mark_bounced(customer_id=invitation.customer_id)
                continue
            except (smtplib.SMTPException, OSError) as e:
                logger.warning("Invitation %s not sent: %s", invitation.pk, e)
                _invitation_failed(invitation=invitation, error=e, now=now)
                continue
            except Exception as e:
                # A message that cannot even be built (a bad header, a broken
                # template) must not strand the rest of the batch in "sending";
                # it is retried with backoff and fails for good after MAX_ATTEMPTS.
                logger.exception("Invitation %s not sent", invitation.pk)
                _invitation_failed(invitation=invitation, error=e, now=now)
                continue
            Invitation.objects.filter(
                pk=invitation.pk, status=InvitationStatus.SENDING
            ).update(
                status=InvitationStatus.SENT, sent_at=timezone.now(), last_error=""
            )
            sent += 1
    finally:
        connection.close()
    _campaigns_finish(campaign_ids={i.campaign_id for i in invitations})
    return sent


def _campaigns_finish(*, campaign_ids) -> None:
    """Marks sending campaigns sent once none of their invitations waits."""
    waiting = Invitation.objects.filter(
        campaign=OuterRef("pk"),
        status__in=[InvitationStatus.QUEUED, InvitationStatus.SENDING],
    )
    Campaign.objects.filter(pk__in=campaign_ids, status=CampaignStatus.SENDING).exclude(
        Exists(waiting)
    ).update(status=CampaignStatus.SENT)


def response_record(
    *, invitation: Invitation, score: int, comment: str = ""
) -> Response:
    """
    Records a customer's answer, or updates their earlier one; returns the response.

    The response, the invitation's answered state and whatever the receivers of
    response_recorded write (a follow-up) commit together.
    """
    low, high = invitation.campaign.survey.score_range
    if (
        isinstance(score, bool)
        or not isinstance(score, int)
        or not low <= score <= high
    ):
        raise ValidationError(
            {
                "score": _("Choose a score from %(low)d to %(high)d.")
                % {"low": low, "high": high}
            }
        )
    if invitation.campaign.is_expired:
        raise ValidationError(_("This survey is closed."))
    comment = (comment or "").strip()
    now = timezone.now()
    with transaction.atomic():
        # One writer per invitation at a time: a double-click waits, then updates.
        Invitation.objects.select_for_update().filter(pk=invitation.pk).first()
        response, created = Response.objects.update_or_create(
            invitation=invitation, defaults={"score": score, "comment": comment}
        )
        Invitation.objects.filter(pk=invitation.pk).update(
            status=InvitationStatus.ANSWERED, answered_at=Coalesce("answered_at", now)
        )
        response_recorded.send(sender=Response, response=response, created=created)
    return response
