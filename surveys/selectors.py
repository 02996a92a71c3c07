"""Reads of the surveys app that pages and the API share."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from cxm.customers.models import CONTACTABLE, SUPPRESSIONS
from cxm.customers.selectors import segment_customers

from .models import (
    TOKEN_PATTERN,
    Campaign,
    Invitation,
    InvitationStatus,
    Question,
    Survey,
)

# The questions of the surveys this process answered lately, by (survey id,
# questions_version): the version comes with the survey row every answer reads
# anyway, so a changed survey is never served stale, and an answer costs no query
# for its questions. Bounded; the oldest go first.
_QUESTIONS: dict[tuple[int, int], list[Question]] = {}
QUESTIONS_CACHED = 200


def survey_questions(survey: Survey) -> list[Question]:
    """Returns the survey's questions in order (each with .survey set)."""
    key = (survey.pk, survey.questions_version)
    questions = _QUESTIONS.get(key)
    if questions is None:
        questions = list(Question.objects.filter(survey=survey).order_by("position"))
        if len(_QUESTIONS) >= QUESTIONS_CACHED:
            _QUESTIONS.pop(next(iter(_QUESTIONS)))
        _QUESTIONS[key] = questions
    for question in questions:
        # Kind and id are all a question reads of its survey; both never change.
        question.survey = survey
    return questions


def invitation_open(*, token: str, answers: bool = False) -> Invitation | None:
    """
    Returns the invitation of a link, with its campaign, survey, customer and
    response (and the response's answers if `answers`), or None.
    """
    if not TOKEN_PATTERN.fullmatch(token):
        # Not a token we make; a NUL byte in it would even fail in PostgreSQL.
        return None
    invitations = Invitation.objects.select_related(
        "campaign__survey", "customer", "response"
    )
    if answers:
        invitations = invitations.prefetch_related("response__answers")
    try:
        return invitations.get(token=token)
    except Invitation.DoesNotExist:
        return None


def campaign_contact_frequency(campaign: Campaign) -> int:
    """The days a campaign leaves between two invitations to one customer; 0: any."""
    if campaign.contact_frequency_days is not None:
        return campaign.contact_frequency_days
    return settings.CONTACT_FREQUENCY_DAYS


def recent_invitations(
    *, customer_id, days: int, now: datetime, exclude_invitation_id: int | None = None
):
    """
    The customer's other invitations that count against the contact-frequency rule
    (sent in the last `days` days, or being emailed right now); None when `days` is
    0 (no limit). The rule's one home: delivery asks it in the query that locks
    the customer, the audience preview for every customer (customer_id an
    OuterRef).
    """
    if not days:
        return None
    recent = Invitation.objects.filter(customer_id=customer_id).filter(
        Q(sent_at__gte=now - timedelta(days=days)) | Q(status=InvitationStatus.SENDING)
    )
    if exclude_invitation_id is not None:
        recent = recent.exclude(pk=exclude_invitation_id)
    return recent


# Why a member of a campaign's segment would not be invited, in the order the
# reasons are told: a customer counts under the first that applies.
AUDIENCE_EXCLUSIONS = [
    (reason, Q(**{f"{field}__isnull": False})) for reason, field in SUPPRESSIONS.items()
]


def campaign_audience_preview(*, campaign: Campaign, now=None) -> dict:
    """
    Returns, before anything is sent, how many customers a campaign's segment holds
    now, how many it would invite, and how many it leaves out for each reason:
    one query, however large the segment.
    """
    now = now or timezone.now()
    # A campaign not saved yet (the admin's add page) has invited nobody.
    already = (
        Q(Exists(Invitation.objects.filter(campaign=campaign, customer=OuterRef("pk"))))
        if campaign.pk is not None
        else Q(pk__in=[])
    )
    reasons = [*AUDIENCE_EXCLUSIONS, ("already_invited", already)]
    recent = recent_invitations(
        customer_id=OuterRef("pk"), days=campaign_contact_frequency(campaign), now=now
    )
    # Sent now, this is who the contact-frequency rule would hold back.
    held_back = Q(Exists(recent)) if recent is not None else Q(pk__in=[])
    reasons.append(("recently_contacted", held_back))
    counts, earlier = {}, Q()
    for reason, condition in reasons:
        counts[reason] = Count(
            "pk", filter=condition & ~earlier if earlier else condition
        )
        earlier |= condition
    preview = segment_customers(segment=campaign.segment, now=now).aggregate(
        audience=Count("pk"),
        invited=Count("pk", filter=CONTACTABLE & ~already & ~held_back),
        **counts,
    )
    return {
        "audience": preview.pop("audience"),
        "invited": preview.pop("invited"),
        "excluded": preview,
    }
