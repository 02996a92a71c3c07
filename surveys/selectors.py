"""Reads of the surveys app that pages and the API share."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

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
    *, customer_id: int, days: int, now: datetime, exclude_invitation_id: int
):
    """
    The customer's other invitations that count against the contact-frequency rule
    (sent in the last `days` days, or being emailed right now); None when `days` is
    0 (no limit). The rule's one home; delivery asks it in the query that locks
    the customer.
    """
    if not days:
        return None
    return (
        Invitation.objects.filter(customer_id=customer_id)
        .filter(
            Q(sent_at__gte=now - timedelta(days=days))
            | Q(status=InvitationStatus.SENDING)
        )
        .exclude(pk=exclude_invitation_id)
    )
