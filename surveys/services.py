import logging
import smtplib
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

from anymail.exceptions import AnymailRecipientsRefused
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Value
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from cxm import emails
from cxm.customers.models import CONTACTABLE, Customer, Interaction
from cxm.customers.selectors import segment_customers
from cxm.jsonvalues import json_problem
from cxm.send_rate import send_slot_wait
from cxm.utils import RepeatedUpdate, batched

from .bounces import METADATA_KEY, invitation_bounce
from .kinds import SCORE_MAX, SCORE_MIN, SurveyKind, kind_of, score_bucket
from .models import (
    CAMPAIGN_HELD,
    CHOICE_TYPES,
    SCHEDULE_FIELDS,
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
    ScheduleKind,
    SkipReason,
    Survey,
    schedule_problems,
    validate_choices,
)
from .schedules import TIMEZONE_PROPERTY, SpreadPlan, customer_zone
from .selectors import (
    campaign_contact_frequency,
    recent_invitations,
    survey_questions,
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
MAX_ATTEMPTS = 5
# A reminder the mail server refused for now is tried again this much later.
REMINDER_RETRY = timedelta(minutes=15)


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


def survey_delete(*, survey: Survey) -> None:
    """Deletes a survey no campaign sent (its campaigns' answers are history)."""
    with transaction.atomic():
        if survey.campaigns.exists():
            raise ValidationError(
                _("Campaigns use this survey: it cannot be deleted."), code=CONFLICT
            )
        survey.delete()


def campaign_delete(*, campaign: Campaign) -> None:
    """Deletes a draft campaign; a sent one is history (stop it instead)."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != CampaignStatus.DRAFT:
            raise ValidationError(
                _("Only a draft campaign can be deleted; stop a sent one instead."),
                code=CONFLICT,
            )
        campaign.delete()


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
    return segment_customers(segment=campaign.segment).contactable()


# What staff may set on a campaign (the rest is set by sending it).
CAMPAIGN_FIELDS = (
    "name",
    "survey",
    "segment",
    "expires_at",
    "expires_after_days",
    "contact_frequency_days",
    "reminders",
    "reminder_interval_days",
    "subject_en",
    "subject_ko",
    "intro_en",
    "intro_ko",
    *SCHEDULE_FIELDS,
)


def _campaign_check(campaign: Campaign, fields) -> None:
    """Raises ValidationError naming the field if a campaign's `fields` are wrong."""
    unknown = set(fields) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise ValidationError(
            {sorted(unknown)[0]: _("This is not a field staff can change.")}
        )
    others = [f.name for f in Campaign._meta.fields if f.name not in fields]
    # Campaign.clean checks the rules between a schedule's fields.
    campaign.full_clean(exclude=others, validate_unique=False)


def campaign_create(**fields) -> Campaign:
    """Creates a draft campaign."""
    campaign = Campaign(**{k: v for k, v in fields.items() if k in CAMPAIGN_FIELDS})
    _campaign_check(campaign, fields)
    campaign.save()
    return campaign


def campaign_update(*, campaign: Campaign, **fields) -> Campaign:
    """
    Changes a draft campaign; once it is sending or sent, it is history. Fields
    given with the values they have change nothing (a form posts every field).
    """
    with transaction.atomic():
        # Locked as campaign_send locks it: a send cannot slip in between.
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        fields = {
            name: value
            for name, value in fields.items()
            if name not in CAMPAIGN_FIELDS or getattr(campaign, name) != value
        }
        if not fields:
            return campaign
        if campaign.status != CampaignStatus.DRAFT:
            message = _("Only a draft campaign can be changed.")
            raise ValidationError({"status": ValidationError(message, code=CONFLICT)})
        for name, value in fields.items():
            setattr(campaign, name, value)
        _campaign_check(campaign, fields)
        campaign.save(update_fields=list(fields))
    return campaign


def campaign_send(*, campaign: Campaign, now=None) -> int:
    """
    Sends a draft campaign under its schedule; returns how many invitations it
    created now.

    Now, at a time, spread: one invitation per eligible customer, due now, at the
    time, or at the customer's slot of the window (SpreadPlan). Recurring: the
    first wave the same way, due at the start; the campaign keeps running and
    campaigns_sweep creates a wave every recur_every_days. Triggered: none yet;
    the campaign runs, and each interaction of its kind from now on invites its
    customer (invitations_trigger). Unsubscribed and bounced customers are
    skipped; a customer never gets two invitations for one wave.
    """
    now = now or timezone.now()
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
        if problems := schedule_problems(
            {f: getattr(campaign, f) for f in SCHEDULE_FIELDS}
        ):
            raise ValidationError(problems)
        if campaign.schedule == ScheduleKind.AT and campaign.starts_at <= now:
            message = _("The time to send at has passed; choose a later one.")
            raise ValidationError(
                {"starts_at": ValidationError(message, code=CONFLICT)}
            )
        start = now
        if campaign.schedule != ScheduleKind.NOW and campaign.starts_at:
            start = max(campaign.starts_at, now)
        created = 0
        if campaign.schedule == ScheduleKind.TRIGGERED:
            campaign.status = CampaignStatus.RUNNING
            campaign.starts_at = start
            # Interactions recorded before the send never trigger; the sweep
            # starts after them.
            campaign.trigger_watermark = _interactions_last_id()
        else:
            created = _wave_create(campaign=campaign, wave=1, start=start)
            if campaign.schedule == ScheduleKind.RECURRING:
                campaign.status = CampaignStatus.RUNNING
                campaign.starts_at = start
                campaign.wave = 1
                campaign.next_wave_at = start + timedelta(
                    days=campaign.recur_every_days
                )
            else:
                campaign.status = (
                    CampaignStatus.SENDING if created else CampaignStatus.SENT
                )
        campaign.sent_at = now
        campaign.save(
            update_fields=[
                "status",
                "sent_at",
                "starts_at",
                "wave",
                "next_wave_at",
                "trigger_watermark",
            ]
        )
        transaction.on_commit(
            lambda: invitations_enqueue(campaign_id=campaign.pk), robust=True
        )
    return created


def _interactions_last_id() -> int:
    return Interaction.objects.aggregate(last=Max("pk"))["last"] or 0


def _wave_create(*, campaign: Campaign, wave: int, start) -> int:
    """
    Creates one invitation of `wave` per customer in the campaign's audience, due
    at `start`, or at their slot of the window for a spread campaign; returns how
    many. Streams the audience in batches: 100k customers are never in memory.
    """
    audience = campaign_audience(campaign=campaign).order_by("pk")
    zone_of = f"properties__{TIMEZONE_PROPERTY}"
    plan, zone_totals, zone_index = None, Counter(), Counter()
    if campaign.schedule == ScheduleKind.SPREAD:
        # Each zone spreads its own customers over its own windows, so customers
        # imported city by city still fill every day of every zone evenly.
        for name, count in (
            audience.order_by().values_list(zone_of).annotate(n=Count("pk"))
        ):
            zone_totals[str(customer_zone(name))] += count
        plan = SpreadPlan(
            start=start,
            days=campaign.window_days,
            weekdays=campaign.window_weekdays,
            start_hour=campaign.window_start_hour,
            end_hour=campaign.window_end_hour,
        )
    rows = audience.values_list("pk", zone_of).iterator(chunk_size=INSERT_BATCH)
    invitations = Invitation.objects.filter(campaign=campaign, wave=wave)
    before = invitations.count()
    for batch in batched(rows, INSERT_BATCH):
        new = []
        for pk, zone_name in batch:
            due_at = start
            if plan:
                zone = customer_zone(zone_name)
                key = str(zone)
                due_at = plan.due_at(zone_index[key], zone, total=zone_totals[key])
                zone_index[key] += 1
            new.append(
                Invitation(campaign=campaign, customer_id=pk, wave=wave, due_at=due_at)
            )
        # A customer already invited keeps the one invitation (the constraint).
        Invitation.objects.bulk_create(new, ignore_conflicts=True)
    # bulk_create returns every row it was given, inserted or not: count.
    return invitations.count() - before


# Interactions one trigger sweep reads per batch, and batches per campaign per sweep.
TRIGGER_BATCH = 5000
TRIGGER_BATCHES = 20
# Statuses of an invitation still to go out: a customer with one gets no other
# from the same triggered campaign until it has gone.
WAITING = (InvitationStatus.QUEUED, InvitationStatus.SENDING)


def invitations_trigger(*, campaign: Campaign, interactions) -> int:
    """
    Creates the invitations a running triggered campaign owes for `interactions`
    (a queryset); returns how many.

    One invitation per triggering interaction, due trigger_delay_hours after it
    happened, if it is of the campaign's kind, happened once the campaign started,
    and its customer is in the audience with no invitation of this campaign still
    waiting to go out (a second purchase before the first one's survey went does
    not add another). Running it twice for an interaction creates nothing more.
    """
    # An expired campaign's links take no answers: it invites nobody more.
    if campaign.status != CampaignStatus.RUNNING or campaign.is_expired:
        return 0
    waiting = Invitation.objects.filter(
        campaign=campaign, customer=OuterRef("customer_id"), status__in=WAITING
    )
    rows = (
        interactions.filter(
            kind=campaign.trigger_kind,
            occurred_at__gte=campaign.starts_at,
            customer__in=campaign_audience(campaign=campaign),
        )
        .exclude(Exists(waiting))
        .order_by("pk")
        .values_list("pk", "customer_id", "occurred_at")
    )
    delay = timedelta(hours=campaign.trigger_delay_hours)
    new, seen = [], set()
    for pk, customer_id, occurred_at in rows:
        if customer_id in seen:
            continue  # its first interaction in this batch invites it
        seen.add(customer_id)
        new.append(
            Invitation(
                campaign=campaign,
                customer_id=customer_id,
                interaction_id=pk,
                due_at=occurred_at + delay,
            )
        )
    if not new:
        return 0
    ids = [i.interaction_id for i in new]
    invitations = Invitation.objects.filter(campaign=campaign, interaction_id__in=ids)
    before = invitations.count()
    Invitation.objects.bulk_create(new, ignore_conflicts=True)
    return invitations.count() - before


def interaction_triggers(*, interaction: Interaction) -> int:
    """
    Creates the invitations that running triggered campaigns owe for one new
    interaction; returns how many. Called when interaction_record commits; what a
    lost call misses, campaigns_sweep creates.
    """
    created = 0
    campaigns = Campaign.objects.filter(
        status=CampaignStatus.RUNNING,
        schedule=ScheduleKind.TRIGGERED,
        trigger_kind=interaction.kind,
    )
    for campaign in campaigns:
        with transaction.atomic():
            count = invitations_trigger(
                campaign=campaign,
                interactions=Interaction.objects.filter(pk=interaction.pk),
            )
        created += count
        # Due already when the interaction is recorded late.
        if (
            count
            and interaction.occurred_at + timedelta(hours=campaign.trigger_delay_hours)
            <= timezone.now()
        ):
            invitations_enqueue(campaign_id=campaign.pk)
    return created


def on_interaction_recorded(*, sender, interaction: Interaction, **kwargs) -> None:
    """The receiver of customers' interaction_recorded."""
    interaction_triggers(interaction=interaction)


def _campaign_trigger_sweep(*, campaign_id: int) -> int:
    """Triggers on the interactions a campaign has not looked at yet, batch by
    batch, moving its watermark on; returns how many invitations it created."""
    created = 0
    for _batch in range(TRIGGER_BATCHES):
        with transaction.atomic():
            # Two sweeps at once: one of them does it.
            campaign = (
                Campaign.objects.select_for_update(skip_locked=True)
                .filter(pk=campaign_id, status=CampaignStatus.RUNNING)
                .first()
            )
            if campaign is None:
                return created
            ids = list(
                Interaction.objects.filter(
                    pk__gt=campaign.trigger_watermark, kind=campaign.trigger_kind
                )
                .order_by("pk")
                .values_list("pk", flat=True)[:TRIGGER_BATCH]
            )
            if not ids:
                return created
            created += invitations_trigger(
                campaign=campaign, interactions=Interaction.objects.filter(pk__in=ids)
            )
            Campaign.objects.filter(pk=campaign.pk).update(trigger_watermark=ids[-1])
        if len(ids) < TRIGGER_BATCH:
            break
    return created


def campaign_wave_create(*, campaign_id: int, now=None) -> int:
    """
    Creates the next wave of a running recurring campaign if it is due: one
    invitation per customer in the audience now; returns how many. A wave missed
    for days (beat was down) is created once, and the next one is due on the
    campaign's rhythm. Two sweeps at once create it once: the campaign row is
    locked (the other skips it), the wave number moves on in the same
    transaction, and the unique (campaign, customer, wave) holds besides.
    """
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True)
            .filter(
                pk=campaign_id,
                status=CampaignStatus.RUNNING,
                schedule=ScheduleKind.RECURRING,
                next_wave_at__lte=now,
            )
            .first()
        )
        if campaign is None or campaign.is_expired:
            return 0
        wave = campaign.wave + 1
        created = _wave_create(campaign=campaign, wave=wave, start=now)
        every = timedelta(days=campaign.recur_every_days)
        next_wave_at = campaign.next_wave_at + every
        if next_wave_at <= now:
            next_wave_at += every * ((now - next_wave_at) // every + 1)
        Campaign.objects.filter(pk=campaign.pk, wave=campaign.wave).update(
            wave=wave, next_wave_at=next_wave_at
        )
        transaction.on_commit(
            lambda: invitations_enqueue(campaign_id=campaign.pk), robust=True
        )
    return created


def campaigns_sweep(*, now=None) -> int:
    """
    Creates what running campaigns owe: triggered invitations for interactions
    whose signal was lost (a crash between commit and receiver), and recurring
    waves that are due. Returns how many invitations it created.
    """
    now = now or timezone.now()
    created = 0
    triggered = Campaign.objects.filter(
        status=CampaignStatus.RUNNING, schedule=ScheduleKind.TRIGGERED
    ).values_list("pk", flat=True)
    for campaign_id in triggered:
        created += _campaign_trigger_sweep(campaign_id=campaign_id)
    recurring = Campaign.objects.filter(
        status=CampaignStatus.RUNNING,
        schedule=ScheduleKind.RECURRING,
        next_wave_at__lte=now,
    ).values_list("pk", flat=True)
    for campaign_id in recurring:
        created += campaign_wave_create(campaign_id=campaign_id, now=now)
    return created


def _campaign_move(*, campaign: Campaign, allowed, to, message) -> Campaign:
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in allowed:
            raise ValidationError({"status": ValidationError(message, code=CONFLICT)})
        campaign.status = to(campaign) if callable(to) else to
        fields = ["status"]
        if (
            campaign.status == CampaignStatus.RUNNING
            and campaign.schedule == ScheduleKind.TRIGGERED
        ):
            # What happened while it was paused does not trigger.
            campaign.trigger_watermark = _interactions_last_id()
            fields.append("trigger_watermark")
        campaign.save(update_fields=fields)
        if campaign.status == CampaignStatus.SENDING:
            transaction.on_commit(
                lambda: _campaigns_finish(campaign_ids=[campaign.pk]), robust=True
            )
    return campaign


def campaign_pause(*, campaign: Campaign) -> Campaign:
    """Pauses a sending or running campaign: no invitation of it goes out and a
    triggered or recurring one creates none, until it is resumed."""
    return _campaign_move(
        campaign=campaign,
        allowed=(CampaignStatus.SENDING, CampaignStatus.RUNNING),
        to=CampaignStatus.PAUSED,
        message=_("Only a sending or running campaign can be paused."),
    )


def campaign_resume(*, campaign: Campaign) -> Campaign:
    """Resumes a paused campaign: its due invitations go out, and a triggered one
    counts the interactions from now on (those while paused do not trigger)."""

    def resumed(c):
        if c.schedule in (ScheduleKind.TRIGGERED, ScheduleKind.RECURRING):
            return CampaignStatus.RUNNING
        return CampaignStatus.SENDING

    return _campaign_move(
        campaign=campaign,
        allowed=(CampaignStatus.PAUSED,),
        to=resumed,
        message=_("Only a paused campaign can be resumed."),
    )


def campaign_stop(*, campaign: Campaign) -> Campaign:
    """Stops a sending, running or paused campaign for good: nothing more of it is
    created or goes out; what was sent stays, and answers are still taken."""
    return _campaign_move(
        campaign=campaign,
        allowed=(CampaignStatus.SENDING, CampaignStatus.RUNNING, CampaignStatus.PAUSED),
        to=CampaignStatus.STOPPED,
        message=_("This campaign has ended already."),
    )


def invitations_enqueue(*, campaign_id: int | None = None, now=None) -> int:
    """
    Enqueues delivery tasks for due queued invitations and due reminders of sent
    ones (of one campaign, or all) that no message is on its way for; returns how
    many were enqueued.

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
        Q(status=InvitationStatus.QUEUED, due_at__lte=now)
        | Q(status=InvitationStatus.SENT, remind_due_at__lte=now),
    ).exclude(campaign__in=Campaign.objects.filter(status__in=CAMPAIGN_HELD))
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
    """
    Closes the links whose time is up, requeues invitations and reminders claimed by
    a dead worker, then enqueues all due ones (invitations and reminders).
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.DELIVERY_CLAIM_TIMEOUT)
    Invitation.objects.filter(
        status=InvitationStatus.SENT, expires_at__isnull=False, expires_at__lte=now
    ).update(status=InvitationStatus.EXPIRED, remind_due_at=None)
    Invitation.objects.filter(
        status=InvitationStatus.SENDING, claimed_at__lt=stale
    ).update(status=InvitationStatus.QUEUED, claimed_at=None, enqueued_at=None)
    Invitation.objects.filter(
        status=InvitationStatus.SENT,
        remind_due_at__isnull=True,
        remind_claimed_at__lt=stale,
    ).update(remind_due_at=now, remind_claimed_at=None, enqueued_at=None)
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


def _invitation_hold_reason(*, invitation: Invitation, now) -> str | None:
    """
    Why an invitation about to be emailed must be held back (a SkipReason), or
    None. The customer's row is read fresh: they may have unsubscribed meanwhile.
    """
    recent = recent_invitations(
        customer_id=invitation.customer_id,
        days=campaign_contact_frequency(invitation.campaign),
        now=now,
        exclude_invitation_id=invitation.pk,
    )
    customer = (
        Customer.objects.filter(pk=invitation.customer_id)
        .annotate(
            recent=Exists(recent) if recent is not None else Value(False),
        )
        .values("unsubscribed_at", "bounced_at", "complained_at", "recent")
        .first()
    )
    if customer is None or customer["unsubscribed_at"] is not None:
        return SkipReason.UNSUBSCRIBED
    if customer["bounced_at"] is not None:
        return SkipReason.BOUNCED
    if customer["complained_at"] is not None:
        return SkipReason.COMPLAINED
    if invitation.campaign.is_expired:
        return SkipReason.EXPIRED
    if customer["recent"]:
        return SkipReason.RECENTLY_CONTACTED
    return None


def _invitation_claim_or_skip(
    *, invitation: Invitation, now, statements: dict | None = None
) -> bool:
    """
    Claims one due queued invitation for emailing (see _invitation_claim), or
    records it skipped with its reason; returns whether it is to be emailed.

    The usual case is one statement (_claim_statement). An invitation it
    leaves (held back, answered meanwhile, another worker's) takes the longer way,
    which says why. Two invitations to one customer claimed at the same moment each
    saw the other still queued; the contact-frequency rule then asks again
    (_invitation_contested).
    """
    days = campaign_contact_frequency(invitation.campaign)
    statements = {} if statements is None else statements
    if ("claim", days) not in statements:
        statements["claim", days] = _claim_statement(days=days, now=now)
    claimed = (
        not invitation.campaign.is_expired
        and statements["claim", days].run(pk=invitation.pk, claimed_at=timezone.now())
    ) or _invitation_claim_held(invitation=invitation, now=now)
    if not claimed:
        return False
    return not days or not _invitation_contested(
        invitation=invitation, days=days, now=now, statements=statements
    )


def _claim_statement(*, days: int, now) -> RepeatedUpdate:
    """
    The claim of one due queued invitation in one statement, provided its customer
    is contactable and was not contacted within `days` days; built once a batch.
    """

    def build(pk, claimed_at):
        recent = recent_invitations(
            customer_id=OuterRef("customer_id"),
            days=days,
            now=now,
            exclude_invitation_id=OuterRef("pk"),
        )
        contactable = Customer.objects.filter(CONTACTABLE, pk=OuterRef("customer_id"))
        due = Invitation.objects.filter(
            Exists(contactable),
            ~Exists(recent) if recent is not None else Q(),
            pk=pk,
            status=InvitationStatus.QUEUED,
            due_at__lte=now,
        )
        return due, {
            "status": InvitationStatus.SENDING,
            "claimed_at": claimed_at,
            "attempts": F("attempts") + 1,
        }

    return RepeatedUpdate(build, pk=0, claimed_at=now)


def _sent_statement() -> RepeatedUpdate:
    """Marks one invitation being emailed sent; built once a batch."""

    def build(pk, sent_at, expires_at, remind_due_at):
        sending = Invitation.objects.filter(pk=pk, status=InvitationStatus.SENDING)
        return sending, {
            "status": InvitationStatus.SENT,
            "sent_at": sent_at,
            "last_error": "",
            "expires_at": expires_at,
            "remind_due_at": remind_due_at,
        }

    now = timezone.now()
    return RepeatedUpdate(build, pk=0, sent_at=now, expires_at=now, remind_due_at=now)


def _invitation_claim_held(*, invitation: Invitation, now) -> bool:
    """
    Claims a due queued invitation that _claim_statement left, and
    records it skipped with the reason it is held back; returns whether it is to
    be emailed after all (its customer became contactable meanwhile).
    """
    with transaction.atomic():
        reason = _invitation_hold_reason(invitation=invitation, now=now)
        if not _invitation_claim(invitation_id=invitation.pk, now=now):
            return False
        if reason is None:
            return True
        Invitation.objects.filter(pk=invitation.pk).update(
            status=InvitationStatus.SKIPPED,
            skip_reason=reason,
            claimed_at=None,
            last_error="",
        )
    return False


# How long an invitation waits when another one to its customer was claimed at the
# same moment (see _invitation_contested).
CONTESTED_RETRY = timedelta(minutes=1)


def _invitation_contested(
    *, invitation: Invitation, days: int, now, statements: dict | None = None
) -> bool:
    """
    Whether another invitation to the same customer was claimed together with this
    one, just claimed: each claim saw the other still queued. Asked after the claim
    is committed, so of two such claims at least the later one sees the other; it
    goes back to the queue for a minute (both may, and then one goes first), after
    which the contact-frequency rule sees the other sent. One statement, built once
    a batch.
    """
    statements = {} if statements is None else statements
    if ("contested", days) not in statements:

        def build(pk):
            recent = recent_invitations(
                customer_id=OuterRef("customer_id"),
                days=days,
                now=now,
                exclude_invitation_id=OuterRef("pk"),
            )
            mine = Invitation.objects.filter(
                Exists(recent), pk=pk, status=InvitationStatus.SENDING
            )
            return mine, {
                "status": InvitationStatus.QUEUED,
                "due_at": now + CONTESTED_RETRY,
                "claimed_at": None,
                "enqueued_at": None,
                "attempts": F("attempts") - 1,
            }

        statements["contested", days] = RepeatedUpdate(build, pk=0)
    return bool(statements["contested", days].run(pk=invitation.pk))


def _reminder_claim(*, invitation_id: int, now) -> bool:
    """
    Takes a sent invitation's due reminder (its due time cleared, the claim's time
    set); returns whether this caller won it. A worker that dies with it leaves it
    to the sweep after DELIVERY_CLAIM_TIMEOUT, as an invitation's claim.
    """
    return bool(
        Invitation.objects.filter(
            pk=invitation_id, status=InvitationStatus.SENT, remind_due_at__lte=now
        ).update(remind_due_at=None, remind_claimed_at=timezone.now())
    )


def _reminder_deliver(
    *, invitation: Invitation, connection, now, rendered: dict | None = None
) -> bool:
    """
    Emails an invitation's due reminder unless it is answered, closed or its customer
    is no longer contactable; returns whether it went out. Schedules the next one.
    """
    if not _reminder_claim(invitation_id=invitation.pk, now=now):
        return False  # answered, expired, or another worker's
    campaign = invitation.campaign
    if not invitation.customer.is_contactable or invitation.is_expired:
        Invitation.objects.filter(pk=invitation.pk).update(remind_claimed_at=None)
        return False
    number = invitation.reminders_sent + 1
    mine = Invitation.objects.filter(pk=invitation.pk, remind_claimed_at__isnull=False)
    try:
        message = invitation_message(
            invitation=invitation, reminder=number, rendered=rendered
        )
        message.connection = connection
        send_slot_wait()  # EMAIL_SEND_RATE, shared by every worker
        message.send()
    except (smtplib.SMTPRecipientsRefused, AnymailRecipientsRefused) as e:
        # The address is refused, not the server down: never retried.
        mine.update(remind_claimed_at=None)
        invitation_bounce(
            invitation_id=invitation.pk,
            customer_id=invitation.customer_id,
            reason=_refusal(e),
        )
        return False
    except Exception as e:
        logger.warning("Reminder of invitation %s not sent: %s", invitation.pk, e)
        mine.update(
            remind_due_at=now + REMINDER_RETRY,
            remind_claimed_at=None,
            enqueued_at=None,
            last_error=str(e)[:2000],
        )
        return False
    sent_at = timezone.now()
    more = number < campaign.reminders
    mine.update(
        reminders_sent=number,
        reminded_at=sent_at,
        remind_due_at=(
            sent_at + timedelta(days=campaign.reminder_interval_days) if more else None
        ),
        remind_claimed_at=None,
        # The message that carried it is spent: the next reminder needs its own.
        enqueued_at=None,
        last_error="",
    )
    return True


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


def invitation_message_id(*, invitation: Invitation, reminder: int = 0) -> str:
    """The invitation email's Message-ID (or its `reminder`th reminder's), derived
    from the invitation and the site."""
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    which = f"-reminder-{reminder}" if reminder else ""
    return f"<invitation-{invitation.pk}-{invitation.campaign_id}{which}@{host}>"


def unsubscribe_headers(*, url: str) -> dict:
    """
    The List-Unsubscribe headers of an email to a customer: the https link (RFC 8058
    one-click), and a mailto to EMAIL_REPLY_TO when one is set.
    """
    targets = [f"<{url}>"]
    if settings.EMAIL_REPLY_TO:
        targets.append(f"<mailto:{settings.EMAIL_REPLY_TO}?subject=unsubscribe>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        # RFC 8058: mail providers (Gmail, Yahoo) post to it for one click.
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


# What differs between two emails of one campaign in one language, rendered as
# these stand-ins once and swapped for each email's own (see invitation_message).
TOKEN_STAND_IN = "cxmTokenStandIn0"
NAME_STAND_IN = "cxmNameStandIn0"


def _invitation_parts(*, campaign: Campaign, language: str, named: bool, reminder: int):
    """
    Returns the subject, text and HTML of a campaign's invitation email (or its
    `reminder`th reminder) in a language, with TOKEN_STAND_IN for the invitation's
    token and, if `named`, NAME_STAND_IN for the customer's name.
    """
    survey = campaign.survey
    headline = next(
        (q for q in survey.questions.all() if q.role == QuestionRole.HEADLINE), None
    )
    link = settings.SITE_URL + reverse("surveys:answer", args=[TOKEN_STAND_IN])
    context = {
        "customer": {"name": NAME_STAND_IN if named else ""},
        "link": link,
        "unsubscribe_url": settings.SITE_URL
        + reverse("surveys:unsubscribe", args=[TOKEN_STAND_IN]),
        "custom_subject": campaign.email_subject(language),
        "intro": campaign.email_intro(language),
        "reminder": reminder,
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
    return emails.render(
        "reminder" if reminder else "invitation", context=context, language=language
    )


def invitation_message(
    *, invitation: Invitation, reminder: int = 0, rendered: dict | None = None
):
    """
    Returns the invitation email for one customer, in the customer's language, or
    its `reminder`th reminder (1, 2 …): the campaign's subject and introduction in
    that language, the standard wording where staff left them empty.

    The templates are rendered once per campaign, language, reminder and whether
    the customer has a name, with stand-ins for the token and the name that each
    email swaps for its own (the name HTML-escaped in the HTML part). `rendered`, a
    dict a caller keeps over a batch, holds those renderings.
    """
    customer = invitation.customer
    campaign = invitation.campaign
    language = customer.locale
    named = bool(customer.name)
    key = (campaign.pk, language, named, reminder)
    rendered = {} if rendered is None else rendered
    if key not in rendered:
        rendered[key] = _invitation_parts(
            campaign=campaign, language=language, named=named, reminder=reminder
        )
    subject, text, html = (
        part.replace(TOKEN_STAND_IN, invitation.token) for part in rendered[key]
    )
    if named:
        subject = subject.replace(NAME_STAND_IN, customer.name)
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
            "X-Cxm-Email": "reminder" if reminder else "invitation",
            **unsubscribe_headers(url=unsubscribe),
            "X-Cxm-Invitation": str(invitation.pk),
            # The same on every attempt: a message sent twice (a worker killed
            # after the server took it) shows once in the customer's mailbox.
            "Message-ID": invitation_message_id(
                invitation=invitation, reminder=reminder
            ),
        },
    )
    if settings.EMAIL_REPLY_TO:
        message.reply_to = [settings.EMAIL_REPLY_TO]
    # An email service (through django-anymail) returns it with each tracking
    # event, whatever Message-ID it gives the email itself (surveys.bounces).
    message.metadata = {METADATA_KEY: str(invitation.pk)}
    return message


def invitation_preview(*, campaign: Campaign, language: str) -> dict:
    """
    Returns the subject, text and HTML of the campaign's invitation email to a
    customer reading `language`, as invitation_message builds it for a real one
    (with a sample name, and a link that leads to no survey).
    """
    with translation.override(language):
        name = _("Alex Kim")
    customer = Customer(email="customer@example.com", name=name, locale=language)
    invitation = Invitation(campaign=campaign, customer=customer, token="preview")
    message = invitation_message(invitation=invitation)
    html = next(
        (body for body, mimetype in message.alternatives if mimetype == "text/html"),
        "",
    )
    return {"subject": message.subject, "text": message.body, "html": html}


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
    right after, so running this twice, or in two workers, emails nobody twice.
    """
    now = timezone.now()
    invitations = list(
        Invitation.objects.filter(
            Q(status=InvitationStatus.QUEUED, due_at__lte=now)
            | Q(status=InvitationStatus.SENT, remind_due_at__lte=now),
            pk__in=invitation_ids,
        )
        .exclude(campaign__in=Campaign.objects.filter(status__in=CAMPAIGN_HELD))
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
            if invitation.status == InvitationStatus.SENT:
                continue  # a reminder: due still, the next sweep enqueues it again
            if _invitation_claim(invitation_id=invitation.pk, now=now):
                invitation.attempts += 1
                _invitation_failed(invitation=invitation, error=e, now=now)
        # A last attempt failed for good may leave its campaign nothing to wait for.
        _campaigns_finish(campaign_ids={i.campaign_id for i in invitations})
        return 0
    rendered = {}  # the batch's emails, rendered once per campaign and language
    statements = {"sent": _sent_statement()}  # the batch's claims and marks, built once
    try:
        for invitation in invitations:
            if invitation.status == InvitationStatus.SENT:
                sent += _reminder_deliver(
                    invitation=invitation,
                    connection=connection,
                    now=now,
                    rendered=rendered,
                )
                continue
            if not _invitation_claim_or_skip(
                invitation=invitation, now=now, statements=statements
            ):
                continue  # another worker's, answered meanwhile, or held back
            invitation.attempts += 1
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
            sent_at = timezone.now()
            campaign = invitation.campaign
            statements["sent"].run(
                pk=invitation.pk,
                sent_at=sent_at,
                expires_at=campaign.invitation_expiry(sent_at=sent_at),
                remind_due_at=(
                    sent_at + timedelta(days=campaign.reminder_interval_days)
                    if campaign.reminders
                    else None
                ),
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
    if invitation.is_expired:
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
        ).update(status=InvitationStatus.ANSWERED, answered_at=now, remind_due_at=None)
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
