"""Reads of the surveys app that pages and the API share."""

import base64
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q
from django.db.models.fields.tuple_lookups import Tuple, TupleLessThan
from django.utils import timezone

from cxm.customers.models import CONTACTABLE, SUPPRESSIONS
from cxm.customers.selectors import segment_customers

from .models import (
    TOKEN_PATTERN,
    Answer,
    Campaign,
    Invitation,
    InvitationStatus,
    Question,
    Response,
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


# A page of responses: newest first, the next page after the last one shown
# (keyset paging: a page deep in a million rows costs what the first one does, and
# nothing counts the rows).
RESPONSES_PAGE = 50


def _cursor_of(response) -> str:
    """The opaque cursor that lists what comes after `response`."""
    micros = (response.created_at - EPOCH) // timedelta(microseconds=1)
    text = f"{micros}_{response.pk}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, int]:
    """Returns the (time, id) a cursor names; ValueError if it is not a cursor."""
    if not CURSOR.fullmatch(cursor):
        raise ValueError(cursor)
    text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    micros, _, pk = text.partition("_")
    if not 0 < int(pk) < 2**63:
        raise ValueError(cursor)
    return EPOCH + timedelta(microseconds=int(micros)), int(pk)


CURSOR = re.compile(r"[A-Za-z0-9_-]{1,64}", re.ASCII)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def responses_page(responses, *, cursor: str | None, size: int | None = None):
    """
    Returns (rows, next cursor or None): up to `size` of `responses` (a queryset
    ordered newest first) after `cursor`. Raises ValueError for a cursor that is
    none this function gave.
    """
    size = size or RESPONSES_PAGE
    if cursor:
        try:
            moment, pk = _after(cursor)
        except (ValueError, OverflowError, OSError, UnicodeDecodeError):
            raise ValueError(cursor)
        responses = responses.filter(
            TupleLessThan(Tuple(F("created_at"), F("id")), (moment, pk))
        )
    rows = list(responses[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return rows, (_cursor_of(rows[-1]) if more else None)


def responses_listed(responses):
    """Returns `responses` with what a list shows of each: its customer, campaign,
    survey and other answers (with their questions), in a fixed number of queries."""
    return responses.select_related("customer", "campaign", "survey").prefetch_related(
        Prefetch(
            "answers",
            queryset=Answer.objects.select_related("question").order_by(
                "question__position"
            ),
        )
    )


def responses_listed_for_api(responses):
    """Returns `responses` with what the API list gives of each: its customer's
    email, its survey's kind and its answers' values, and no more (a customer's
    properties and a question's wording are not read)."""
    return (
        responses.select_related("customer", "survey")
        .only(
            *[f.attname for f in Response._meta.concrete_fields],
            "customer__email",
            "survey__kind",
        )
        .prefetch_related(
            Prefetch(
                "answers",
                queryset=Answer.objects.only(
                    "response_id", "question_id", "number", "text", "choices"
                ).order_by("id"),
            )
        )
    )
