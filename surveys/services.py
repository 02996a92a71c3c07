import logging
import smtplib
from datetime import timedelta
from urllib.parse import urlsplit

from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.db.models import Exists, F, OuterRef, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cxm import emails
from cxm.customers.models import Customer
from cxm.jsonvalues import json_problem
from cxm.send_rate import send_slot_wait
from cxm.utils import batched

from .bounces import METADATA_KEY, invitation_bounce
from .kinds import SCORE_MAX, SCORE_MIN, SurveyKind, kind_of, score_bucket
from .models import (
    CHOICE_TYPES,
    TEXT_LIMITS,
    Answer,
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    Question,
    QuestionRole,
    QuestionType,
    Response,
    ResponseRevision,
    Survey,
    audience_filter,
    validate_choices,
)
from .selectors import survey_questions
from .signals import response_recorded

logger = logging.getLogger(__name__)

# Invitations per delivery task: one SMTP connection each, a few hundred KB of
# rendered email in memory at a time.
DELIVERY_BATCH = 100
# Rows inserted per INSERT when a campaign is sent.
INSERT_BATCH = 1000
# Most invitations one sweep enqueues; the next sweep takes the rest.
SWEEP_LIMIT = 20_000
MAX_ATTEMPTS = 5


# Ready surveys staff start from: (name, kind, wording of the headline in English
# and Korean). Each comes with the "why?" question of its kind.
SURVEY_TEMPLATES = {
    "relationship_nps": (
        gettext_lazy("Relationship NPS"),
        SurveyKind.NPS,
        "",
        "",
    ),
    "post_purchase_csat": (
        gettext_lazy("Post-purchase CSAT"),
        SurveyKind.CSAT,
        "How satisfied were you with your recent purchase from {company}?",
        "최근 {company}에서 구매하신 경험에 얼마나 만족하셨습니까?",
    ),
    "post_support_ces": (
        gettext_lazy("Post-support CES"),
        SurveyKind.CES,
        "How much do you agree with this statement: “{company} made it easy for me "
        "to handle my issue.”",
        "다음 문장에 얼마나 동의하십니까? “{company}에서 제 문제를 쉽게 해결할 수 "
        "있었다.”",
    ),
}

# What a question spec (a dict, from the API, the admin or a template) may say.
QUESTION_FIELDS = (
    "type",
    "required",
    "text_en",
    "text_ko",
    "scale_low",
    "scale_high",
    "label_low_en",
    "label_low_ko",
    "label_high_en",
    "label_high_ko",
    "choices",
)
TEXT_FIELDS = (
    "text_en",
    "text_ko",
    "label_low_en",
    "label_low_ko",
    "label_high_en",
    "label_high_ko",
)
MAX_QUESTIONS = 50
# The code of a ValidationError that the current state refuses (a campaign already
# sent), not the input on its own: the API answers it with a 409.
CONFLICT = "conflict"
COPY_HINT = gettext_lazy(
    "Copy the survey to ask something else; wording can still change."
)


# Where the standard questions stand, whatever order a list gives them in.
ROLE_ORDER = {QuestionRole.HEADLINE: 0, QuestionRole.REASON: 1}


def _standard_questions(kind: str) -> list[dict]:
    """The questions a survey of `kind` starts with: the score, then "why?"."""
    if kind_of(kind) is None:
        return []
    return [
        {"role": QuestionRole.HEADLINE, "type": QuestionType.SCORE, "required": True},
        {"role": QuestionRole.REASON, "type": QuestionType.LONG_TEXT},
    ]


def _spec_clean(spec, *, kind: str, current: Question | None) -> dict:
    """
    Returns a question spec completed and checked against the builder's rules, or
    raises ValidationError naming the field. `current` is the question it changes.
    """
    if not isinstance(spec, dict):
        raise ValidationError(_("Each question is an object."))
    unknown = set(spec) - {"id", "role", "position", *QUESTION_FIELDS}
    if unknown:
        raise ValidationError(
            {sorted(unknown)[0]: _("This is not a field of a question.")}
        )
    role = current.role if current else spec.get("role") or QuestionRole.EXTRA
    if role not in QuestionRole.values:
        raise ValidationError({"role": _("Choose headline, reason or nothing.")})
    if current and "role" in spec and (spec["role"] or "") != current.role:
        raise ValidationError({"role": _("A question's role cannot change.")})
    if role and kind_of(kind) is None:
        message = _("A custom survey has no headline score; add score questions.")
        raise ValidationError({"role": ValidationError(message, code=CONFLICT)})
    standard = {
        QuestionRole.HEADLINE: QuestionType.SCORE,
        QuestionRole.REASON: QuestionType.LONG_TEXT,
    }
    base = {name: getattr(current, name) for name in QUESTION_FIELDS} if current else {}
    new_type = spec.get("type", current.type) if current else None
    if current and new_type != current.type:
        # A new type keeps only what it has: choices, or a scale and end labels.
        if new_type not in CHOICE_TYPES:
            base.pop("choices", None)
        if new_type != QuestionType.SCORE:
            for name in ("scale_low", "scale_high", *TEXT_FIELDS[2:]):
                base.pop(name, None)
    clean = {**base, **{k: v for k, v in spec.items() if k in QUESTION_FIELDS}}
    clean["role"] = role
    qtype = standard.get(role) or clean.get("type")
    if role and clean.get("type", qtype) != qtype:
        raise ValidationError({"type": _("The standard questions keep their type.")})
    if qtype not in QuestionType.values:
        raise ValidationError({"type": _("Choose a question type.")})
    clean["type"] = qtype
    if not isinstance(clean.get("required", False), bool):
        raise ValidationError({"required": _("Say true or false.")})
    clean["required"] = clean.get("required", False)
    if role == QuestionRole.HEADLINE:
        clean["required"] = True  # the score every metric reads
    for name in TEXT_FIELDS:
        value = clean.get(name) or ""
        if not isinstance(value, str):
            raise ValidationError({name: _("Give text.")})
        limit = Question._meta.get_field(name).max_length
        value = value.strip()
        if len(value) > limit:
            raise ValidationError(
                {name: _("Keep it to %(limit)d characters at most.") % {"limit": limit}}
            )
        if problem := json_problem(value):
            raise ValidationError({name: problem})
        clean[name] = value
    if not role and not clean["text_en"]:
        raise ValidationError({"text_en": _("Word the question in English.")})

    choices = clean.get("choices") or []
    if qtype in CHOICE_TYPES:
        try:
            validate_choices(choices)
        except ValidationError as e:
            raise ValidationError({"choices": e.messages})
        if len(choices) < 2:
            raise ValidationError({"choices": _("Offer at least two choices.")})
        choices = [
            {"value": c["value"], "en": c["en"].strip(), "ko": c.get("ko", "").strip()}
            for c in choices
        ]
    elif choices:
        raise ValidationError({"choices": _("Only a choice question has choices.")})
    clean["choices"] = choices

    low, high = clean.get("scale_low"), clean.get("scale_high")
    if qtype == QuestionType.SCORE and not role:
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (low, high)):
            raise ValidationError(
                {"scale_low": _("Give the lowest and the highest score.")}
            )
        if not (SCORE_MIN <= low < high <= SCORE_MAX):
            raise ValidationError(
                {
                    "scale_high": _(
                        "A scale runs from %(min)d to %(max)d at most, low before high."
                    )
                    % {"min": SCORE_MIN, "max": SCORE_MAX}
                }
            )
    else:
        if low is not None or high is not None:
            if role == QuestionRole.HEADLINE:
                message = _("The scale of the score comes with the survey's kind.")
            else:
                message = _("Only a score question has a scale.")
            raise ValidationError({"scale_low": message})
        if qtype != QuestionType.SCORE and any(
            clean[name] for name in TEXT_FIELDS if name.startswith("label_")
        ):
            raise ValidationError(
                {"label_low_en": _("Only a score question has end labels.")}
            )
    return clean


def _only_conflicts(error: ValidationError) -> bool:
    """Whether every message of error has the code CONFLICT."""
    if hasattr(error, "error_dict"):
        messages = [m for field in error.error_dict.values() for m in field]
    else:
        messages = error.error_list
    return {m.code for m in messages} == {CONFLICT}


def _answered_question_ids(question_ids) -> set[int]:
    return set(
        Answer.objects.filter(question_id__in=question_ids)
        .values_list("question_id", flat=True)
        .distinct()
    )


def survey_questions_check(*, survey: Survey | None, kind: str, questions) -> list:
    """
    Returns [(question or None, clean spec)] for a survey's new list of questions,
    in order, or raises ValidationError: {"questions": [errors of each question]},
    or a message about the list. Errors of single questions also come as the
    error's `per_question`: one {field: [messages]} for each question, in order.

    The builder's rules: a question with answers can be reworded but not removed
    or re-typed (nor its scale changed, nor a choice taken away); the standard
    score question stays; a custom survey has at least one question.

    For an existing survey, each message that the survey's current questions,
    answers or kind refuse (not the list on its own) has the code CONFLICT.
    """
    if not isinstance(questions, list):
        raise ValidationError({"questions": _("Give the questions as a list.")})
    if len(questions) > MAX_QUESTIONS:
        raise ValidationError(
            {
                "questions": _(
                    "A survey asks at most %(limit)d questions, its standard ones "
                    "included."
                )
                % {"limit": MAX_QUESTIONS}
            }
        )
    existing = {q.pk: q for q in survey.questions.all()} if survey else {}
    answered = _answered_question_ids(existing) if existing else set()
    errors, conflicts, result, seen_roles, kept = [], [], [], set(), set()
    for spec in questions:
        current = None
        if isinstance(spec, dict) and spec.get("id") is not None:
            current = existing.get(spec["id"]) if isinstance(spec["id"], int) else None
            if current is None or current.pk in kept:
                message = (
                    _("This question is in the list twice.")
                    if current
                    else _("This survey has no such question.")
                )
                errors.append({"id": [message]})
                conflicts.append(True)
                result.append(None)
                continue
            kept.add(current.pk)
        try:
            clean = _spec_clean(spec, kind=kind, current=current)
            if clean["role"] and clean["role"] in seen_roles:
                message = _("Only one question has this role.")
                raise ValidationError({"role": ValidationError(message, code=CONFLICT)})
            seen_roles.add(clean["role"])
            if current and current.pk in answered:
                _check_answered_kept(current, clean)
        except ValidationError as e:
            errors.append(
                e.message_dict if hasattr(e, "error_dict") else {"type": e.messages}
            )
            conflicts.append(current is not None or _only_conflicts(e))
            result.append(None)
            continue
        errors.append({})
        conflicts.append(True)
        result.append((current, clean))
    if any(errors):
        flat = [
            ValidationError(
                _("Question %(n)d: %(message)s") % {"n": n, "message": message},
                code=CONFLICT if survey and conflict else None,
            )
            for n, (problems, conflict) in enumerate(
                zip(errors, conflicts, strict=True), start=1
            )
            for messages in problems.values()
            for message in messages
        ]
        error = ValidationError({"questions": flat})
        # The same, as {field: [messages]} for each question in order, for forms.
        error.per_question = errors
        raise error
    # The score first, its "why?" next, the rest in the order given (a stable sort).
    result.sort(key=lambda item: ROLE_ORDER.get(item[1]["role"], 2))

    problems = []
    for pk in sorted(set(existing) - kept):
        question = existing[pk]
        label = _("Question %(position)d (%(text)s)") % {
            "position": question.position,
            "text": question.display_text(),
        }
        if question.role == QuestionRole.HEADLINE:
            problems.append(
                _("%(question)s is the survey's score and stays.") % {"question": label}
            )
        elif pk in answered:
            problems.append(
                _("%(question)s has answers and cannot be removed. %(hint)s")
                % {"question": label, "hint": COPY_HINT}
            )
    if kind_of(kind) and QuestionRole.HEADLINE not in seen_roles and not problems:
        problems.append(_("A survey of this kind keeps its score question."))
    if not result:
        problems.append(_("Ask at least one question."))
    if problems:
        code = CONFLICT if survey else None
        raise ValidationError(
            {"questions": [ValidationError(p, code=code) for p in problems]}
        )
    return result


def _check_answered_kept(question: Question, clean: dict) -> None:
    """Raises ValidationError if `clean` would lose or re-type `question`'s answers."""
    if clean["type"] != question.type:
        raise ValidationError(
            {
                "type": _("This question has answers: its type stays. %(hint)s")
                % {"hint": COPY_HINT}
            }
        )
    if (clean.get("scale_low"), clean.get("scale_high")) != (
        question.scale_low,
        question.scale_high,
    ):
        raise ValidationError(
            {
                "scale_low": _("This question has answers: its scale stays. %(hint)s")
                % {"hint": COPY_HINT}
            }
        )
    kept = {c["value"] for c in clean["choices"]}
    lost = [c["value"] for c in question.choices if c["value"] not in kept]
    if lost:
        raise ValidationError(
            {
                "choices": _(
                    "This question has answers: the choice %(value)r stays. %(hint)s"
                )
                % {"value": lost[0], "hint": COPY_HINT}
            }
        )


def _questions_write(*, survey: Survey, checked: list) -> None:
    """Writes the checked questions in order (positions 1, 2 …), removing the rest,
    and moves the survey's questions_version on (see selectors.survey_questions)."""
    keep = [current.pk for current, _clean in checked if current]
    survey.questions.exclude(pk__in=keep).delete()
    # Out of the way first: a swap must not collide on (survey, position).
    survey.questions.update(position=F("position") + 1000)
    new = []
    for position, (current, clean) in enumerate(checked, start=1):
        fields = {"position": position, "role": clean["role"]}
        fields.update({name: clean.get(name) for name in QUESTION_FIELDS})
        if current is None:
            new.append(Question(survey=survey, **fields))
        else:
            Question.objects.filter(pk=current.pk).update(**fields)
    Question.objects.bulk_create(new)
    Survey.objects.filter(pk=survey.pk).update(
        questions_version=F("questions_version") + 1
    )


def survey_questions_planned(*, kind: str, questions: list | None) -> list:
    """
    Returns the question specs survey_create checks and writes for a new survey:
    the kind's standard questions not given (by "role"), the score first, its "why?"
    next, then `questions` as given (the same dicts, so a caller can match them).
    """
    questions = list(questions or [])
    given_roles = {q.get("role") for q in questions if isinstance(q, dict)}
    standard = [q for q in _standard_questions(kind) if q["role"] not in given_roles]
    return sorted(
        [*standard, *questions],
        key=lambda q: ROLE_ORDER.get(q.get("role") if isinstance(q, dict) else None, 2),
    )


def _survey_name(name) -> str:
    """Returns the name stripped, or raises ValidationError if it is not one."""
    name = name.strip() if isinstance(name, str) else ""
    if not name:
        raise ValidationError({"name": _("Name the survey.")})
    limit = Survey._meta.get_field("name").max_length
    if len(name) > limit:
        raise ValidationError(
            {"name": _("Keep it to %(limit)d characters at most.") % {"limit": limit}}
        )
    return name


def survey_create(
    *, name: str, kind: str = SurveyKind.NPS, questions: list | None = None
) -> Survey:
    """
    Creates a survey. NPS, CSAT and CES start with their standard score question and
    "why?" question (give one with "role" to reword it); `questions` adds to them.
    """
    if kind not in SurveyKind.values:
        raise ValidationError({"kind": _("Choose NPS, CSAT, CES or custom.")})
    name = _survey_name(name)
    specs = survey_questions_planned(kind=kind, questions=questions)
    try:
        checked = survey_questions_check(survey=None, kind=kind, questions=specs)
    except ValidationError as e:
        if hasattr(e, "per_question"):
            # Report by the caller's own list, not the one with the standard
            # questions added.
            pairs = zip(specs, e.per_question, strict=True)
            found = {id(spec): errors for spec, errors in pairs}
            e.per_question = [found[id(q)] for q in questions or []]
        raise
    with transaction.atomic():
        survey = Survey.objects.create(name=name, kind=kind)
        _questions_write(survey=survey, checked=checked)
    return survey


def survey_update(
    *, survey: Survey, name: str | None = None, questions: list | None = None
) -> Survey:
    """
    Renames a survey and/or replaces its list of questions (existing ones named by
    "id"); the builder's rules hold (survey_questions_check). The kind never changes.
    """
    with transaction.atomic():
        survey = Survey.objects.select_for_update().get(pk=survey.pk)
        if name is not None:
            survey.name = _survey_name(name)
            survey.save(update_fields=["name"])
        if questions is not None:
            checked = survey_questions_check(
                survey=survey, kind=survey.kind, questions=questions
            )
            _questions_write(survey=survey, checked=checked)
    return survey


def survey_copy(*, survey: Survey, name: str = "") -> Survey:
    """Creates a new survey with the same kind and questions, and no answers."""
    specs = [
        {"role": q.role, **{f: getattr(q, f) for f in QUESTION_FIELDS}}
        for q in survey.questions.all()
    ]
    copy_name = name or _("Copy of %(name)s") % {"name": survey.name}
    return survey_create(name=copy_name[:200], kind=survey.kind, questions=specs)


def survey_from_template(*, template: str, name: str = "") -> Survey:
    """Creates a survey from one of SURVEY_TEMPLATES."""
    if template not in SURVEY_TEMPLATES:
        raise ValidationError(
            {
                "template": _("Choose one of: %(names)s.")
                % {"names": ", ".join(SURVEY_TEMPLATES)}
            }
        )
    title, kind, text_en, text_ko = SURVEY_TEMPLATES[template]
    headline = {
        "role": QuestionRole.HEADLINE,
        "type": QuestionType.SCORE,
        "text_en": text_en,
        "text_ko": text_ko,
    }
    return survey_create(name=name or str(title), kind=kind, questions=[headline])


def campaign_audience(*, campaign: Campaign):
    """Returns the customers a campaign would invite now."""
    return Customer.objects.contactable().filter(audience_filter(campaign.audience))


def campaign_update(*, campaign: Campaign, **fields) -> Campaign:
    """Changes a draft campaign; once it is sending or sent, it is history."""
    with transaction.atomic():
        # Locked as campaign_send locks it: a send cannot slip in between.
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != CampaignStatus.DRAFT:
            message = _("Only a draft campaign can be changed.")
            raise ValidationError({"status": ValidationError(message, code=CONFLICT)})
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
                },
                code=CONFLICT,
            )
        if campaign.is_expired:
            raise ValidationError(
                _("This campaign has expired; change its expiry first."), code=CONFLICT
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
    Enqueues delivery tasks for due queued invitations (of one campaign, or all)
    that no message is on its way for; returns how many were enqueued.

    Each batch is marked enqueued, and committed, before its message goes out: a
    worker that takes the message at once must find its rows free, since a claim
    skips locked rows. A message the broker refuses unmarks its rows for the next
    sweep; one lost later is made up for after DELIVERY_REQUEUE_AFTER seconds, and
    a row is claimed once however many messages name it.
    """
    from . import tasks

    now = now or timezone.now()
    lost = now - timedelta(seconds=settings.DELIVERY_REQUEUE_AFTER)
    due = Invitation.objects.filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=lost),
        status=InvitationStatus.QUEUED,
        due_at__lte=now,
    )
    if campaign_id is not None:
        due = due.filter(campaign_id=campaign_id)
    enqueued = 0
    while enqueued < SWEEP_LIMIT:
        with transaction.atomic():
            # Two sweeps at once take different rows.
            batch = list(
                due.select_for_update(skip_locked=True)
                .order_by("due_at", "pk")
                .values_list("pk", flat=True)[:DELIVERY_BATCH]
            )
            Invitation.objects.filter(pk__in=batch).update(enqueued_at=now)
        if not batch:
            break
        try:
            tasks.invitations_send.delay(batch)
        except Exception:
            Invitation.objects.filter(
                pk__in=batch, status=InvitationStatus.QUEUED, enqueued_at=now
            ).update(enqueued_at=None)
            raise
        enqueued += len(batch)
    return enqueued


def invitations_sweep(*, now=None) -> int:
    """Requeues invitations claimed by a dead worker, then enqueues all due ones."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.DELIVERY_CLAIM_TIMEOUT)
    Invitation.objects.filter(
        status=InvitationStatus.SENDING, claimed_at__lt=stale
    ).update(status=InvitationStatus.QUEUED, claimed_at=None, enqueued_at=None)
    # An invitation answered before delivery is never delivered, so no delivery
    # finishes a campaign whose last waiting invitation it was.
    _campaigns_finish(
        campaign_ids=Campaign.objects.filter(status=CampaignStatus.SENDING).values("pk")
    )
    return invitations_enqueue(now=now)


def _invitation_claim(*, invitation_id: int, now) -> bool:
    """
    Moves one due queued invitation to sending, just before its email goes out;
    returns whether this caller won it. One at a time, so a worker that dies holds
    one invitation at most (the one it was emailing), not its whole batch.
    """
    return bool(
        Invitation.objects.filter(
            pk=invitation_id, status=InvitationStatus.QUEUED, due_at__lte=now
        ).update(
            status=InvitationStatus.SENDING,
            claimed_at=timezone.now(),
            attempts=F("attempts") + 1,
        )
    )


# Marks one invitation sent and claims the next (as _invitation_claim does) in
# one statement, one round trip: the hot path of delivery. An id of NULL matches
# nothing, so either half may be left out.
_SENT_THEN_CLAIM = """
UPDATE {table} SET
    status = CASE WHEN id = %s THEN %s ELSE %s END,
    sent_at = CASE WHEN id = %s THEN %s ELSE sent_at END,
    last_error = CASE WHEN id = %s THEN '' ELSE last_error END,
    claimed_at = CASE WHEN id = %s THEN claimed_at ELSE %s END,
    attempts = CASE WHEN id = %s THEN attempts ELSE attempts + 1 END
WHERE (id = %s AND status = %s) OR (id = %s AND status = %s AND due_at <= %s)
RETURNING id
"""


def _invitation_sent_then_claim(*, sent_id: int | None, claim_id: int | None, now):
    """
    Marks the invitation `sent_id` (emailed, still sending) sent and claims the
    due queued invitation `claim_id` (queued → sending) together; returns whether
    this caller won the claim.
    """
    ops = db.ops
    at = ops.adapt_datetimefield_value(timezone.now())
    sending, queued = InvitationStatus.SENDING, InvitationStatus.QUEUED
    params = [
        *(sent_id, InvitationStatus.SENT, sending),
        *(sent_id, at),
        sent_id,
        *(sent_id, at),
        sent_id,
        *(sent_id, sending, claim_id, queued, ops.adapt_datetimefield_value(now)),
    ]
    with db.cursor() as cursor:
        cursor.execute(
            _SENT_THEN_CLAIM.format(table=ops.quote_name(Invitation._meta.db_table)),
            params,
        )
        won = {row[0] for row in cursor.fetchall()}
    return claim_id is not None and claim_id in won


# The invitation email's score buttons fit a 320 px phone even where the mail
# client drops <style>: 264 px is what the email's margins (8 + 1 + 18 px a side)
# leave of 320, with 2 px to spare.
EMAIL_SCALE_WIDTH = 264
EMAIL_BUTTON_GAP = 4
EMAIL_BUTTON_WIDTH_MAX = 44


def _email_score_rows(
    *, kind: str, link: str, low: int, high: int, labels: tuple[str, str]
) -> list[dict]:
    """
    Returns the invitation email's rows of score buttons: one row of up to seven
    scores, or two (NPS: 0–5 and 6–10) that sit side by side where there is room.
    Each row has its scores ({n, url, tone}), the widths of a button, of the gap
    between buttons and of the row, and the end label under its first button (the
    low end) or its last (the high end).
    """
    scores = [
        {"n": n, "url": f"{link}?score={n}", "tone": score_bucket(kind, n).tone}
        for n in range(low, high + 1)
    ]
    per_row = len(scores) if len(scores) <= 7 else -(-len(scores) // 2)
    button = min(
        EMAIL_BUTTON_WIDTH_MAX,
        (EMAIL_SCALE_WIDTH - EMAIL_BUTTON_GAP * (per_row - 1)) // per_row,
    )
    chunks = [scores[i : i + per_row] for i in range(0, len(scores), per_row)]
    return [
        {
            "scores": chunk,
            "button_width": button,
            "gap": EMAIL_BUTTON_GAP,
            "width": len(chunk) * button + EMAIL_BUTTON_GAP * (len(chunk) - 1),
            "label_low": labels[0] if i == 0 else "",
            "label_high": labels[1] if i == len(chunks) - 1 else "",
        }
        for i, chunk in enumerate(chunks)
    ]


def invitation_message_id(*, invitation: Invitation) -> str:
    """The invitation email's Message-ID, derived from the invitation and the site."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<invitation-{invitation.pk}-{invitation.campaign_id}@{host}>"


# What differs between two emails of one campaign in one language, rendered as
# these stand-ins once and swapped for each email's own (see invitation_message).
TOKEN_STAND_IN = "cxmTokenStandIn0"
NAME_STAND_IN = "cxmNameStandIn0"


def _invitation_parts(*, survey: Survey, language: str, named: bool):
    """
    Returns the subject, text and HTML of a survey's invitation email in a
    language, with TOKEN_STAND_IN for the invitation's token and, if `named`,
    NAME_STAND_IN for the customer's name.
    """
    headline = next(
        (q for q in survey.questions.all() if q.role == QuestionRole.HEADLINE), None
    )
    link = settings.SITE_URL + reverse("surveys:answer", args=[TOKEN_STAND_IN])
    unsubscribe = settings.SITE_URL + reverse(
        "surveys:unsubscribe", args=[TOKEN_STAND_IN]
    )
    context = {
        "customer": {"name": NAME_STAND_IN if named else ""},
        "link": link,
        "unsubscribe_url": unsubscribe,
    }
    if headline is not None:
        low, high = headline.scale
        labels = headline.scale_labels(language)
        rows = _email_score_rows(
            kind=survey.kind, link=link, low=low, high=high, labels=labels
        )
        context.update(
            question=headline.display_text(language),
            labels=labels,
            score_low=low,
            score_high=high,
            score_links=[(s["n"], s["url"]) for row in rows for s in row["scores"]],
            score_rows=rows,
        )
    return emails.render("invitation", context=context, language=language)


def invitation_message(*, invitation: Invitation, rendered: dict | None = None):
    """
    Returns the invitation email for one customer, in the customer's language.

    The templates are rendered once per survey, language and whether the customer
    has a name, with stand-ins for the token and the name that each email swaps
    for its own (the name HTML-escaped in the HTML part): what else they show must
    not differ between customers. `rendered`, a dict a caller keeps over a batch,
    holds those renderings; without it, each call renders afresh.
    """
    customer = invitation.customer
    survey = invitation.campaign.survey
    language = customer.locale
    key = (survey.pk, language, bool(customer.name))
    rendered = {} if rendered is None else rendered
    if key not in rendered:
        rendered[key] = _invitation_parts(
            survey=survey, language=language, named=bool(customer.name)
        )
    subject, text, html = (
        part.replace(TOKEN_STAND_IN, invitation.token) for part in rendered[key]
    )
    if customer.name:
        text = text.replace(NAME_STAND_IN, customer.name)
        html = html.replace(NAME_STAND_IN, escape(customer.name))
    unsubscribe = settings.SITE_URL + reverse(
        "surveys:unsubscribe", args=[invitation.token]
    )
    message = emails.message_of(
        subject,
        text,
        html,
        to=[customer.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            # RFC 8058: mail providers (Gmail, Yahoo) post to it for one click.
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Cxm-Invitation": str(invitation.pk),
            # The same on every attempt: a message sent twice (a worker killed
            # after the server took it) shows once in the customer's mailbox.
            "Message-ID": invitation_message_id(invitation=invitation),
        },
    )
    # An email service (through django-anymail) returns it with each tracking
    # event, whatever Message-ID it gives the email itself (surveys.bounces).
    message.metadata = {METADATA_KEY: str(invitation.pk)}
    return message


def _refusal(error: Exception) -> str:
    """What a refused recipient's error says: the server's reply where it gave one."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{address}: {code} {reply.decode(errors='replace')}"
            for address, (code, reply) in error.recipients.items()
        )
    return str(error)


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
    right after (by the statement that claims the next), so running this twice, or
    in two workers, emails nobody twice.
    """
    now = timezone.now()
    invitations = list(
        Invitation.objects.filter(
            pk__in=invitation_ids, status=InvitationStatus.QUEUED, due_at__lte=now
        )
        .select_related("campaign__survey", "customer")
        .prefetch_related("campaign__survey__questions")
        .order_by("pk")
    )
    if not invitations:
        return 0
    sent = 0
    connection = get_connection()
    try:
        connection.open()
    except (smtplib.SMTPException, OSError) as e:
        logger.warning("Cannot reach the mail server: %s", e)
        for invitation in invitations:
            if _invitation_claim(invitation_id=invitation.pk, now=now):
                invitation.attempts += 1
                _invitation_failed(invitation=invitation, error=e, now=now)
        # A last attempt failed for good may leave its campaign nothing to wait for.
        _campaigns_finish(campaign_ids={i.campaign_id for i in invitations})
        return 0
    rendered = {}  # the batch's email, rendered once per survey and language
    emailed = None  # to be marked sent by the statement that claims the next
    try:
        for invitation in invitations:
            won = _invitation_sent_then_claim(
                sent_id=emailed, claim_id=invitation.pk, now=now
            )
            emailed = None
            if not won:
                continue  # another worker's, or answered or unsubscribed meanwhile
            invitation.attempts += 1
            if not invitation.customer.is_contactable or invitation.campaign.is_expired:
                Invitation.objects.filter(
                    pk=invitation.pk, status=InvitationStatus.SENDING
                ).update(status=InvitationStatus.FAILED, last_error="not contactable")
                continue
            try:
                message = invitation_message(invitation=invitation, rendered=rendered)
                message.connection = connection
                send_slot_wait()  # EMAIL_SEND_RATE, shared by every worker
                message.send()
            except (smtplib.SMTPRecipientsRefused, AnymailRecipientsRefused) as e:
                # The address is refused, not the server down: never retried.
                invitation_bounce(
                    invitation_id=invitation.pk,
                    customer_id=invitation.customer_id,
                    reason=_refusal(e),
                )
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
            emailed = invitation.pk
            sent += 1
    finally:
        if emailed is not None:  # the last one, or one before a worker's death
            _invitation_sent_then_claim(sent_id=emailed, claim_id=None, now=now)
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


def _answer_clean(question: Question, raw) -> dict | None:
    """
    Returns the columns of an Answer to `question` ({"number": 7} …), None for no
    answer, or raises ValidationError saying what is wrong with `raw`.
    """
    qtype = question.type
    if raw is None or raw == "" or raw == []:
        return None
    if qtype == QuestionType.SCORE:
        low, high = question.scale
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
            raise ValidationError(
                _("Choose a score from %(low)d to %(high)d.")
                % {"low": low, "high": high}
            )
        return {"number": raw}
    if qtype in CHOICE_TYPES:
        values = [c["value"] for c in question.choices]
        picked = raw if isinstance(raw, list) else [raw]
        if (
            not all(isinstance(v, str) and v in values for v in picked)
            or qtype == QuestionType.SINGLE_CHOICE
            and len(picked) != 1
        ):
            raise ValidationError(_("Choose one of the options shown."))
        return {"choices": [v for v in values if v in picked]}
    if not isinstance(raw, str):
        raise ValidationError(_("Write your answer as text."))
    text = raw.strip()
    if not text:
        return None
    limit = TEXT_LIMITS[qtype]
    if len(text) > limit:
        raise ValidationError(
            _("Please write at most %(limit)d characters.") % {"limit": limit}
        )
    if json_problem(text):
        raise ValidationError(_("This text holds characters we cannot store."))
    return {"text": text}


def _answer_columns(answer: Answer) -> dict:
    if answer.number is not None:
        return {"number": answer.number}
    if answer.choices:
        return {"choices": answer.choices}
    return {"text": answer.text}


def response_record(
    *,
    invitation: Invitation,
    answers: dict | None = None,
    score=None,
    comment=None,
) -> Response:
    """
    Records a customer's answers, or changes their earlier ones; returns the response.

    `answers` maps a question's field_name ("score", "comment", "q<id>") to its
    value: an int for a score, a choice value (a list of them for multiple choice),
    text; None or "" clears an earlier answer. `score` and `comment` are short for
    the headline and the reason. Questions left out keep their earlier answers, so a
    score can be saved first and the rest sent next. A new response needs the
    headline score (or, in a custom survey, any answer).

    The response, its answers, the invitation's answered state and whatever the
    receivers of response_recorded write (a follow-up) commit together. Sending the
    same answers again changes and records nothing.
    """
    given = dict(answers or {})
    if score is not None:
        given["score"] = score
    if comment is not None:
        given["comment"] = comment
    survey = invitation.campaign.survey
    questions = {q.field_name: q for q in survey_questions(survey)}
    errors = {}
    cleaned = {}
    for name, raw in given.items():
        question = questions.get(name)
        if question is None:
            errors[name] = [_("This survey has no such question.")]
            continue
        try:
            cleaned[question] = _answer_clean(question, raw)
        except ValidationError as e:
            errors[name] = e.messages
            continue
        if cleaned[question] is None and question.required:
            errors[name] = [
                _("Please choose a score.")
                if question.type == QuestionType.SCORE
                else _("Please answer this question.")
            ]
    if errors:
        raise ValidationError(errors)
    if invitation.campaign.is_expired:
        raise ValidationError(_("This survey is closed."))

    now = timezone.now()
    try:
        response, created, changed = _response_write(
            invitation=invitation, survey=survey, cleaned=cleaned, now=now
        )
    except IntegrityError:
        # An answer to a question staff removed since the page was drawn: the
        # deferred foreign key refuses it at commit, and nothing is saved.
        raise ValidationError(
            _(
                "This survey changed while you were answering. Please check your "
                "answers and send them again."
            )
        )
    return response


def _response_write(*, invitation, survey, cleaned: dict, now):
    """Writes a response in one transaction; returns (response, created, changed)."""
    with transaction.atomic():
        # The first answer marks the invitation answered; that takes its row lock,
        # so one writer per invitation at a time, and no response can exist yet
        # (answered_at is set with the response). A double-click's second request
        # waits here for the first, then finds its response below.
        first = Invitation.objects.filter(
            pk=invitation.pk, answered_at__isnull=True
        ).update(status=InvitationStatus.ANSWERED, answered_at=now)
        response = None
        if not first:
            locked = Invitation.objects.select_for_update().filter(pk=invitation.pk)
            list(locked.values_list("pk", flat=True))
            response = Response.objects.filter(invitation=invitation).first()
        if response is None:
            response = _response_create(
                invitation=invitation, survey=survey, cleaned=cleaned, now=now
            )
            changed = {q.field_name for q, value in cleaned.items() if value}
            created = True
        else:
            response.survey = survey
            changed = _response_change(response=response, cleaned=cleaned, now=now)
            if not changed:
                return response, False, changed
            created = False
        response_recorded.send(
            sender=Response, response=response, created=created, changed=changed
        )
    return response, created, changed


def _headline(survey: Survey, cleaned: dict, role: str):
    for question, value in cleaned.items():
        if question.role == role:
            return question, value
    return None, None


def _response_create(*, invitation, survey, cleaned: dict, now) -> Response:
    answered = {q: v for q, v in cleaned.items() if v is not None}
    headline, score = _headline(survey, answered, QuestionRole.HEADLINE)
    if survey.has_headline and headline is None:
        raise ValidationError({"score": _("Please choose a score.")})
    if not answered:
        raise ValidationError(_("Please answer at least one question."))
    _reason, comment = _headline(survey, answered, QuestionRole.REASON)
    response = Response.objects.create(
        invitation=invitation,
        campaign=invitation.campaign,
        survey=survey,
        customer_id=invitation.customer_id,
        score=score["number"] if score else None,
        comment=comment["text"] if comment else "",
        created_at=now,
        updated_at=now,
    )
    Answer.objects.bulk_create(
        [Answer(response=response, question=q, **v) for q, v in answered.items()]
    )
    return response


def _response_change(*, response: Response, cleaned: dict, now) -> set[str]:
    """Applies changed answers to an existing response, keeping the earlier
    version; returns the field names that changed (none: nothing written)."""
    current = {a.question_id: a for a in response.answers.all()}
    changed = {
        question: value
        for question, value in cleaned.items()
        if value
        != (_answer_columns(current[question.pk]) if question.pk in current else None)
    }
    if not changed:
        return set()
    remaining = {pk for pk in current if pk not in {q.pk for q in changed}} | {
        q.pk for q, v in changed.items() if v is not None
    }
    if not remaining:
        raise ValidationError(_("Please answer at least one question."))
    ResponseRevision.objects.create(
        response=response,
        score=response.score,
        comment=response.comment,
        answers={str(pk): a.value for pk, a in current.items()},
        answered_at=response.updated_at,
        replaced_at=now,
    )
    gone = [
        current[q.pk].pk for q, v in changed.items() if v is None and q.pk in current
    ]
    Answer.objects.filter(pk__in=gone).delete()
    for question, value in changed.items():
        if value is None:
            continue
        columns = {"number": None, "text": "", "choices": [], **value}
        if question.pk in current:
            Answer.objects.filter(pk=current[question.pk].pk).update(**columns)
        else:
            Answer.objects.create(response=response, question=question, **columns)
    for question, value in changed.items():
        if question.role == QuestionRole.HEADLINE:
            response.score = value["number"]  # required: never None
        elif question.role == QuestionRole.REASON:
            response.comment = value["text"] if value else ""
    response.updated_at = now
    response.save(update_fields=["score", "comment", "updated_at"])
    return {q.field_name for q in changed}
