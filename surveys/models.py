import re
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from cxm.customers.models import INTERACTION_KIND, Customer, Segment
from cxm.jsonvalues import json_problem

from .kinds import (
    KINDS,
    REASON_QUESTION,
    SCORE_MAX,
    SCORE_MIN,
    SurveyKind,
    kind_of,
    score_bucket,
)


class Survey(models.Model):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"),
        max_length=10,
        choices=SurveyKind.choices,
        default=SurveyKind.NPS,
        help_text=_(
            "NPS, CSAT and CES come with their standard score question; a custom "
            "survey asks only the questions you add. The kind cannot change later."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Counts every change to the questions (survey_update), so a process may keep
    # them between requests and know from the survey row when they are stale.
    questions_version = models.PositiveIntegerField(
        _("questions version"), default=1, editable=False
    )

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    @property
    def has_headline(self) -> bool:
        """True for NPS, CSAT and CES: one score every metric reads."""
        return self.kind in KINDS


class QuestionType(models.TextChoices):
    SCORE = "score", _("Score")
    SINGLE_CHOICE = "single_choice", _("Single choice")
    MULTIPLE_CHOICE = "multiple_choice", _("Multiple choice")
    SHORT_TEXT = "short_text", _("Short text")
    LONG_TEXT = "long_text", _("Long text")


class QuestionRole(models.TextChoices):
    """What a question is to the survey; the service sets it, staff never do."""

    EXTRA = "", _("Extra question")
    HEADLINE = "headline", _("Headline score")
    REASON = "reason", _("Reason for the score")


CHOICE_TYPES = (QuestionType.SINGLE_CHOICE, QuestionType.MULTIPLE_CHOICE)
TEXT_LIMITS = {QuestionType.SHORT_TEXT: 200, QuestionType.LONG_TEXT: 5000}
CHOICE_VALUE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
MAX_CHOICES = 30
CHOICE_LABEL_MAX = 200


def validate_choices(value) -> None:
    """
    Raises ValidationError unless value is a list of choices, each
    {"value": "fast", "en": "Fast delivery", "ko": "빠른 배송"} with a unique value.
    """
    if not isinstance(value, list):
        raise ValidationError(_("Choices must be a list."))
    if len(value) > MAX_CHOICES:
        raise ValidationError(
            _("A question may offer at most %(limit)d choices."),
            params={"limit": MAX_CHOICES},
        )
    seen = set()
    for choice in value:
        if not isinstance(choice, dict) or set(choice) - {"value", "en", "ko"}:
            raise ValidationError(
                _('Each choice is {"value": …, "en": …, "ko": …}.'), code="shape"
            )
        key = choice.get("value")
        if not isinstance(key, str) or not CHOICE_VALUE.fullmatch(key):
            raise ValidationError(
                _(
                    "%(value)r is not a choice value: use lower-case letters, digits, "
                    "- and _, up to 50."
                ),
                params={"value": key},
            )
        if key in seen:
            raise ValidationError(
                _("The choice value %(value)r is there twice."), params={"value": key}
            )
        seen.add(key)
        english = choice.get("en")
        if not isinstance(english, str) or not english.strip():
            raise ValidationError(
                _("The choice %(value)r needs an English label."),
                params={"value": key},
            )
        if not isinstance(choice.get("ko", ""), str):
            raise ValidationError(
                _("The Korean label of %(value)r must be text."),
                params={"value": key},
            )
        if max(len(english), len(choice.get("ko", ""))) > CHOICE_LABEL_MAX:
            raise ValidationError(
                _("The labels of %(value)r are longer than %(limit)d characters."),
                params={"value": key, "limit": CHOICE_LABEL_MAX},
            )
    if problem := json_problem(value):
        raise ValidationError(problem, code="not_storable")


def _worded(english: str, korean: str, language: str | None = None) -> str:
    """Returns the wording for `language` (the active one): Korean, else English."""
    language = language or get_language() or settings.LANGUAGE_CODE
    return korean if language.startswith("ko") and korean else english


class Question(models.Model):
    survey = models.ForeignKey(
        Survey,
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("survey"),
    )
    position = models.PositiveSmallIntegerField(_("position"))
    type = models.CharField(_("type"), max_length=20, choices=QuestionType.choices)
    role = models.CharField(
        _("role"),
        max_length=10,
        choices=QuestionRole.choices,
        blank=True,
        default=QuestionRole.EXTRA,
    )
    required = models.BooleanField(_("required"), default=False)
    text_en = models.CharField(
        _("wording (English)"),
        max_length=500,
        blank=True,
        help_text=_(
            "{company} stands for the company's name. Leave empty on a standard "
            "question for its standard wording."
        ),
    )
    text_ko = models.CharField(
        _("wording (Korean)"),
        max_length=500,
        blank=True,
        help_text=_(
            "Korean customers read this. Empty: the standard Korean wording, or the "
            "English one for an extra question."
        ),
    )
    # A score question's scale; the headline's comes from the survey's kind.
    scale_low = models.PositiveSmallIntegerField(
        _("lowest score"), null=True, blank=True
    )
    scale_high = models.PositiveSmallIntegerField(
        _("highest score"), null=True, blank=True
    )
    label_low_en = models.CharField(_("low end (English)"), max_length=100, blank=True)
    label_low_ko = models.CharField(_("low end (Korean)"), max_length=100, blank=True)
    label_high_en = models.CharField(
        _("high end (English)"), max_length=100, blank=True
    )
    label_high_ko = models.CharField(_("high end (Korean)"), max_length=100, blank=True)
    choices = models.JSONField(
        _("choices"),
        default=list,
        blank=True,
        validators=[validate_choices],
        help_text=_("The options of a choice question, in order."),
    )

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["survey", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "position"], name="question_position_unique"
            ),
            models.UniqueConstraint(
                fields=["survey", "role"],
                condition=~models.Q(role=""),
                name="question_one_per_role",
            ),
            models.CheckConstraint(
                condition=~models.Q(role="headline") | models.Q(type="score"),
                name="question_headline_is_a_score",
            ),
            models.CheckConstraint(
                condition=~models.Q(role="reason") | models.Q(type="long_text"),
                name="question_reason_is_long_text",
            ),
            models.CheckConstraint(
                condition=~models.Q(type="score", role="")
                | models.Q(
                    scale_low__gte=SCORE_MIN,
                    scale_high__lte=SCORE_MAX,
                    scale_low__lt=models.F("scale_high"),
                ),
                name="question_score_scale",
            ),
        ]

    def __str__(self):
        return self.display_text()

    @property
    def field_name(self) -> str:
        """The name of this question's answer in a form or an error: score, comment
        or q<id>."""
        if self.role == QuestionRole.HEADLINE:
            return "score"
        if self.role == QuestionRole.REASON:
            return "comment"
        return f"q{self.pk}"

    @property
    def scale(self) -> tuple[int, int] | None:
        """(lowest, highest) of a score question; the kind's for the headline."""
        if self.type != QuestionType.SCORE:
            return None
        if self.role == QuestionRole.HEADLINE:
            spec = KINDS[self.survey.kind]
            return spec.low, spec.high
        return self.scale_low, self.scale_high

    def display_text(self, language: str | None = None) -> str:
        """
        Returns the question as the customer reads it, in `language` or the active
        one. A Korean reader never gets an English rewording of a standard question:
        its standard Korean wording instead.
        """
        language = language or get_language() or settings.LANGUAGE_CODE
        text = self.text_ko if language.startswith("ko") else self.text_en
        if not text:
            if self.role == QuestionRole.HEADLINE:
                text = KINDS[self.survey.kind].question
            elif self.role == QuestionRole.REASON:
                text = REASON_QUESTION
            else:
                text = self.text_en
            with translation.override(language):
                text = str(text).replace("%(company)s", "{company}")
        return text.replace("{company}", settings.COMPANY_NAME)

    def scale_labels(self, language: str | None = None) -> tuple[str, str]:
        """The labels under a score scale's two ends, in `language` or the active."""
        language = language or get_language() or settings.LANGUAGE_CODE
        korean = language.startswith("ko")
        low = self.label_low_ko if korean else self.label_low_en
        high = self.label_high_ko if korean else self.label_high_en
        standard = (
            KINDS[self.survey.kind] if self.role == QuestionRole.HEADLINE else None
        )
        with translation.override(language):
            if not low:
                low = str(standard.label_low) if standard else self.label_low_en
            if not high:
                high = str(standard.label_high) if standard else self.label_high_en
        return low, high

    def choice_labels(self, language: str | None = None) -> list[tuple[str, str]]:
        """[(value, label)] of a choice question, in `language` or the active."""
        return [
            (c["value"], _worded(c["en"], c.get("ko", ""), language))
            for c in self.choices
        ]


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    # A triggered or recurring campaign keeps inviting until staff stop it.
    RUNNING = "running", _("Running")
    # Nothing new is created and nothing goes out until it is resumed.
    PAUSED = "paused", _("Paused")
    # Ended by staff: nothing more is created or sent.
    STOPPED = "stopped", _("Stopped")


# No invitation of a campaign in these states goes out.
CAMPAIGN_HELD = (CampaignStatus.PAUSED, CampaignStatus.STOPPED)


class ScheduleKind(models.TextChoices):
    NOW = "now", _("Now")
    AT = "at", _("At a time")
    SPREAD = "spread", _("Spread over a window")
    TRIGGERED = "triggered", _("After an interaction")
    RECURRING = "recurring", _("Recurring waves")


# The fields of a campaign that make its schedule.
SCHEDULE_FIELDS = (
    "schedule",
    "starts_at",
    "window_days",
    "window_weekdays",
    "window_start_hour",
    "window_end_hour",
    "trigger_kind",
    "trigger_delay_hours",
    "recur_every_days",
)
WINDOW_DAYS_MAX = 366
TRIGGER_DELAY_HOURS_MAX = 24 * 366
RECUR_EVERY_DAYS_MAX = 3660


def schedule_problems(values: dict) -> dict[str, str]:
    """
    Returns {field: message} for what is wrong with a campaign's schedule, given as
    its field values (schedule, starts_at, window_days …); empty when it holds.
    Parameters of another kind of schedule are not looked at.
    """
    kind = values.get("schedule") or ScheduleKind.NOW
    problems = {}
    if kind not in ScheduleKind.values:
        return {"schedule": _("Choose now, at, spread, triggered or recurring.")}
    if kind == ScheduleKind.AT and values.get("starts_at") is None:
        problems["starts_at"] = _("Give the time to send at.")
    if kind == ScheduleKind.SPREAD:
        days = values.get("window_days")
        if days is None or not 1 <= days <= WINDOW_DAYS_MAX:
            problems["window_days"] = _(
                "Give the number of days to spread over, 1 to %(max)d."
            ) % {"max": WINDOW_DAYS_MAX}
        weekdays = values.get("window_weekdays") or []
        if not isinstance(weekdays, list) or any(
            isinstance(d, bool) or not isinstance(d, int) or not 1 <= d <= 7
            for d in weekdays
        ):
            problems["window_weekdays"] = _(
                "List the weekdays as numbers, 1 (Monday) to 7 (Sunday)."
            )
        elif len(set(weekdays)) != len(weekdays):
            problems["window_weekdays"] = _("A weekday is listed twice.")
        start, end = values.get("window_start_hour"), values.get("window_end_hour")
        if (start is None) != (end is None):
            problems["window_end_hour"] = _(
                "Give both the hour the window opens and the hour it closes, or "
                "neither for any time of day."
            )
        elif start is not None and not 0 <= start < end <= 24:
            problems["window_end_hour"] = _(
                "The window needs hours: it opens (0–23) before it closes (1–24)."
            )
    if kind == ScheduleKind.TRIGGERED:
        if not INTERACTION_KIND.fullmatch(values.get("trigger_kind") or ""):
            problems["trigger_kind"] = _(
                "Name the kind of interaction that triggers an invitation, e.g. "
                "purchase."
            )
        delay = values.get("trigger_delay_hours")
        if delay is None or not 1 <= delay <= TRIGGER_DELAY_HOURS_MAX:
            problems["trigger_delay_hours"] = _(
                "Give the delay after the interaction in hours, at least 1 "
                "(72 for 3 days)."
            )
    if kind == ScheduleKind.RECURRING:
        every = values.get("recur_every_days")
        if every is None or not 1 <= every <= RECUR_EVERY_DAYS_MAX:
            problems["recur_every_days"] = _(
                "Give how often to invite again, in days, at least 1."
            )
    return problems


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200)
    survey = models.ForeignKey(
        Survey,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("survey"),
    )
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("segment"),
        help_text=_("The customers to invite. Empty: all customers."),
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=CampaignStatus.choices,
        default=CampaignStatus.DRAFT,
    )
    expires_at = models.DateTimeField(
        _("expires at"),
        null=True,
        blank=True,
        help_text=_("After this time the links no longer accept answers."),
    )
    expires_after_days = models.PositiveSmallIntegerField(
        _("expires after (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text=_(
            "Each link closes this many days after its email was sent. Empty: "
            "only the date above closes them."
        ),
    )
    contact_frequency_days = models.PositiveSmallIntegerField(
        _("contact frequency (days)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(365)],
        help_text=_(
            "Nobody sent an invitation by any campaign within this many days is "
            "invited; they are skipped. Empty: the project's default; 0: no limit."
        ),
    )
    reminders = models.PositiveSmallIntegerField(
        _("reminders"),
        default=0,
        validators=[MaxValueValidator(5)],
        help_text=_("How many reminders those who have not answered get (0 to 5)."),
    )
    reminder_interval_days = models.PositiveSmallIntegerField(
        _("days between reminders"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(60)],
        help_text=_("Days from the invitation to the first reminder, and between."),
    )
    subject_en = models.CharField(
        _("email subject (English)"),
        max_length=200,
        blank=True,
        help_text=_("Empty: “A quick question about your experience”."),
    )
    subject_ko = models.CharField(
        _("email subject (Korean)"),
        max_length=200,
        blank=True,
        help_text=_("Empty: the standard Korean subject."),
    )
    intro_en = models.TextField(
        _("email introduction (English)"),
        max_length=1000,
        blank=True,
        help_text=_(
            "A paragraph under the greeting. Empty: the standard wording (none "
            "above a score question)."
        ),
    )
    intro_ko = models.TextField(
        _("email introduction (Korean)"),
        max_length=1000,
        blank=True,
        help_text=_("Empty: the standard Korean wording."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # The schedule (schedule_problems checks it; see README, "Schedules").
    schedule = models.CharField(
        _("schedule"),
        max_length=10,
        choices=ScheduleKind.choices,
        default=ScheduleKind.NOW,
    )
    starts_at = models.DateTimeField(
        _("starts at"),
        null=True,
        blank=True,
        help_text=_(
            "When the invitations go out (at a time), the window opens (spread), "
            "interactions start to count (triggered) or the first wave goes out "
            "(recurring). Empty: when the campaign is sent."
        ),
    )
    window_days = models.PositiveSmallIntegerField(
        _("window days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(WINDOW_DAYS_MAX)],
        help_text=_("Spread: the number of days the invitations are spread over."),
    )
    window_weekdays = models.JSONField(
        _("window weekdays"),
        default=list,
        blank=True,
        help_text=_(
            "Spread: the weekdays to send on, 1 (Monday) to 7 (Sunday), e.g. "
            "[1, 2, 3, 4, 5]. Empty: every day."
        ),
    )
    window_start_hour = models.PositiveSmallIntegerField(
        _("window opens at"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(23)],
        help_text=_("Spread: the hour (0–23) sending starts, in the customer's zone."),
    )
    window_end_hour = models.PositiveSmallIntegerField(
        _("window closes at"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24)],
        help_text=_("Spread: the hour (1–24) sending stops, in the customer's zone."),
    )
    trigger_kind = models.CharField(
        _("trigger interaction"),
        max_length=64,
        blank=True,
        help_text=_("Triggered: the kind of interaction, e.g. purchase."),
    )
    trigger_delay_hours = models.PositiveIntegerField(
        _("delay in hours"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(TRIGGER_DELAY_HOURS_MAX)],
        help_text=_("Triggered: hours after the interaction, e.g. 72 for 3 days."),
    )
    recur_every_days = models.PositiveSmallIntegerField(
        _("every N days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(RECUR_EVERY_DAYS_MAX)],
        help_text=_("Recurring: the days between two waves of invitations."),
    )
    wave = models.PositiveIntegerField(_("waves sent"), default=0, editable=False)
    next_wave_at = models.DateTimeField(
        _("next wave at"), null=True, blank=True, editable=False
    )
    # The last interaction id the trigger sweep has looked at.
    trigger_watermark = models.BigIntegerField(default=0, editable=False)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reminders__lte=5)
                & models.Q(reminder_interval_days__gte=1)
                & ~models.Q(expires_after_days=0),
                name="campaign_reminders_expiry",
            )
        ]

    def __str__(self):
        return self.name

    def clean(self):
        problems = schedule_problems({f: getattr(self, f) for f in SCHEDULE_FIELDS})
        if problems:
            raise ValidationError(problems)

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def email_subject(self, language: str) -> str:
        """The staff's subject of the emails in `language`; "" for the standard."""
        return self.subject_ko if language.startswith("ko") else self.subject_en

    def email_intro(self, language: str) -> str:
        """The staff's introduction in `language`; "" for the standard."""
        return self.intro_ko if language.startswith("ko") else self.intro_en

    def invitation_expiry(self, *, sent_at):
        """When the link of an invitation sent at `sent_at` closes, or None."""
        ends = [self.expires_at] if self.expires_at else []
        if self.expires_after_days:
            ends.append(sent_at + timedelta(days=self.expires_after_days))
        return min(ends) if ends else None


class InvitationStatus(models.TextChoices):
    QUEUED = "queued", _("Scheduled")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")
    ANSWERED = "answered", _("Answered")
    EXPIRED = "expired", _("Expired")


class SkipReason(models.TextChoices):
    """Why an invitation was held back instead of sent."""

    RECENTLY_CONTACTED = "recently_contacted", _("Recently contacted")
    UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
    BOUNCED = "bounced", _("Bounced before")
    COMPLAINED = "complained", _("Reported our email as spam")
    EXPIRED = "expired", _("Campaign expired")


def new_token() -> str:
    """Returns a random, unguessable invitation token of 192 bits."""
    return secrets.token_urlsafe(24)


# What new_token() makes (URL-safe base64), up to the column's length.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Invitation(models.Model):
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="invitations",
        verbose_name=_("campaign"),
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="invitations",
        verbose_name=_("customer"),
    )
    token = models.CharField(_("token"), max_length=64, unique=True, default=new_token)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=InvitationStatus.choices,
        default=InvitationStatus.QUEUED,
    )
    due_at = models.DateTimeField(_("due at"), default=timezone.now)
    enqueued_at = models.DateTimeField(_("enqueued at"), null=True, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    skip_reason = models.CharField(
        _("skipped because"), max_length=20, choices=SkipReason.choices, blank=True
    )
    # The next reminder's due time (None: no more reminders), and the claim of a
    # worker sending it, as due_at and claimed_at are for the invitation itself.
    remind_due_at = models.DateTimeField(_("next reminder at"), null=True, blank=True)
    remind_claimed_at = models.DateTimeField(
        _("reminder claimed at"), null=True, blank=True
    )
    reminders_sent = models.PositiveSmallIntegerField(_("reminders sent"), default=0)
    reminded_at = models.DateTimeField(_("last reminded at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("link closes at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # A complaint (the customer marked the email as spam) comes after delivery, so
    # it is recorded beside the delivery state rather than as one.
    complained_at = models.DateTimeField(_("complained at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Recurring campaigns invite their audience again in waves 1, 2, …; every other
    # campaign has one wave.
    wave = models.PositiveIntegerField(_("wave"), default=1)
    # The id of the interaction that triggered it, for a triggered campaign: a
    # plain number, so that deleting an interaction leaves the invitation as it is.
    interaction_id = models.BigIntegerField(_("interaction"), null=True, blank=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer", "wave"],
                condition=models.Q(interaction_id__isnull=True),
                name="invitation_one_per_customer_wave",
            ),
            models.UniqueConstraint(
                fields=["campaign", "interaction_id"],
                condition=models.Q(interaction_id__isnull=False),
                name="invitation_one_per_interaction",
            ),
        ]
        indexes = [
            # The sweep's query: queued (or stuck sending) rows by due time.
            models.Index(
                fields=["due_at"],
                name="invitation_due",
                condition=models.Q(status__in=["queued", "sending"]),
            ),
            # The sweep's reminders: sent, unanswered rows by their reminder's time.
            models.Index(
                fields=["remind_due_at"],
                name="invitation_remind_due",
                condition=models.Q(status="sent", remind_due_at__isnull=False),
            ),
            # The sweep's expiry: sent rows whose link closes.
            models.Index(
                fields=["expires_at"],
                name="invitation_expiry",
                condition=models.Q(status="sent", expires_at__isnull=False),
            ),
            # The customer's timeline (surveys.timeline): by when it went out, or
            # was made while it has not.
            models.Index(
                models.F("customer"),
                Coalesce("sent_at", "created_at"),
                models.F("id"),
                name="invitation_customer_time",
            ),
            # The response rate over time: what was delivered in a period, and
            # answered, read from the index alone.
            models.Index(
                fields=["sent_at"],
                include=["campaign", "status", "answered_at"],
                name="invitation_sent",
                condition=models.Q(sent_at__isnull=False),
            ),
            # Contact frequency: was this customer sent anything lately?
            models.Index(
                fields=["customer", "sent_at"],
                name="invitation_customer_sent",
                condition=models.Q(sent_at__isnull=False),
            ),
        ]

    def __str__(self):
        return f"{self.campaign} → {self.customer}"

    def get_absolute_url(self):
        return reverse("surveys:answer", args=[self.token])

    @property
    def link(self) -> str:
        return settings.SITE_URL + self.get_absolute_url()

    @property
    def is_expired(self) -> bool:
        """Whether the link is closed: by its campaign, its own time, or a sweep."""
        return (
            self.status == InvitationStatus.EXPIRED
            or self.campaign.is_expired
            or (self.expires_at is not None and self.expires_at <= timezone.now())
        )


class Response(models.Model):
    """
    What one customer said to one invitation: the fact row every metric starts
    from. It carries its campaign, survey, customer, time and headline score (and
    the comment that explains it) itself, set by response_record, so a metric over
    millions of answers reads this one table.
    """

    invitation = models.OneToOneField(
        Invitation,
        on_delete=models.CASCADE,
        related_name="response",
        verbose_name=_("invitation"),
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="responses",
        verbose_name=_("campaign"),
        db_index=False,  # response_campaign_time leads with it
    )
    survey = models.ForeignKey(
        Survey,
        on_delete=models.CASCADE,
        related_name="responses",
        verbose_name=_("survey"),
        db_index=False,  # response_survey_time leads with it
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="responses",
        verbose_name=_("customer"),
    )
    # The headline question's answer (None for a custom survey) and the reason
    # given for it, copied from the answers by the service.
    score = models.PositiveSmallIntegerField(_("score"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("answered at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = pgettext_lazy("survey answer", "response")
        verbose_name_plural = pgettext_lazy("survey answers", "responses")
        ordering = ["-created_at", "-id"]
        constraints = [
            # The widest scale of any kind; the service checks the survey's own.
            models.CheckConstraint(
                condition=models.Q(score__gte=SCORE_MIN, score__lte=SCORE_MAX),
                name="response_score_range",
            )
        ]
        indexes = [
            # customer has its foreign key's index.
            models.Index(fields=["created_at"], name="response_created"),
            # The customer's timeline (surveys.timeline): each answer's latest version.
            models.Index(
                fields=["customer", "updated_at", "id"], name="response_customer_time"
            ),
            # The metrics over time read a kind's surveys in a period: the score
            # (and the customer, for a segment) from the index alone.
            models.Index(
                fields=["survey", "created_at"],
                include=["score", "customer"],
                name="response_survey_time",
            ),
            # A campaign's responses newest first, a page after a (time, id) cursor.
            models.Index(
                fields=["campaign", "created_at", "id"], name="response_campaign_time"
            ),
        ]

    def __str__(self):
        return f"{self.customer}: {self.score if self.score is not None else '—'}"

    @property
    def bucket(self) -> str | None:
        """The headline score's bucket (promoter, satisfied, hard …), or None."""
        if self.score is None or kind_of(self.survey.kind) is None:
            return None
        return score_bucket(self.survey.kind, self.score).bucket


class Answer(models.Model):
    """The answer to one question: a number, a text or the choices picked."""

    response = models.ForeignKey(
        Response,
        on_delete=models.CASCADE,
        related_name="answers",
        verbose_name=pgettext_lazy("survey answer", "response"),
        db_index=False,  # answer_one_per_question leads with it
    )
    # PROTECT: a question with answers is kept (survey_update says so first).
    question = models.ForeignKey(
        Question,
        on_delete=models.PROTECT,
        related_name="answers",
        verbose_name=_("question"),
    )
    number = models.PositiveSmallIntegerField(_("number"), null=True, blank=True)
    text = models.TextField(_("text"), blank=True)
    choices = models.JSONField(_("choices"), default=list, blank=True)

    class Meta:
        verbose_name = _("answer")
        verbose_name_plural = _("answers")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["response", "question"], name="answer_one_per_question"
            )
        ]

    def __str__(self):
        return str(self.value)

    def display_value(self, language: str | None = None) -> str:
        """The answer as a person reads it: choices by their labels."""
        if self.choices:
            labels = dict(self.question.choice_labels(language))
            return ", ".join(labels.get(v, v) for v in self.choices)
        return str(self.value)

    @property
    def value(self):
        """The number, the text or the list of choice values."""
        if self.number is not None:
            return self.number
        if self.text:
            return self.text
        return self.choices


class DailyScore(models.Model):
    """
    How many responses gave each score on a day (in the site's TIME_ZONE), per
    campaign: what the dashboard's default figures add up instead of reading every
    response. Kept by PostgreSQL triggers on the response table as responses are
    written, changed and deleted (surveys/rollups.py); never written by Python.
    """

    day = models.DateField()
    # Plain ids, no foreign keys: a campaign deleted with its responses takes its
    # counts down to zero through the same triggers, in any order.
    campaign_id = models.IntegerField()
    survey_id = models.IntegerField()
    score = models.PositiveSmallIntegerField()
    # How many responses gave the score that day.
    answers = models.IntegerField()

    class Meta:
        constraints = [
            # The days of a kind's surveys, summed from this index alone.
            models.UniqueConstraint(
                fields=["day", "campaign_id", "score"],
                include=["survey_id", "answers"],
                name="dailyscore_key",
            )
        ]
        indexes = [
            # One campaign's days (the dashboard filtered to a campaign).
            models.Index(
                fields=["campaign_id", "day"],
                include=["score", "answers"],
                name="dailyscore_campaign_day",
            ),
        ]

    def __str__(self):
        return f"{self.day} {self.campaign_id} {self.score}: {self.answers}"


class DailyDelivery(models.Model):
    """
    How many of a campaign's invitations were delivered on a day (sent and not
    bounced, by the day they were sent, in TIME_ZONE) and how many of those were
    answered: the response rate's rollup, kept like DailyScore.
    """

    day = models.DateField()
    campaign_id = models.IntegerField()
    # Delivered that day, and how many of those were answered (at any time).
    invitations = models.IntegerField()
    answered_invitations = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "campaign_id"],
                include=["invitations", "answered_invitations"],
                name="dailydelivery_key",
            )
        ]
        indexes = [
            models.Index(
                fields=["campaign_id", "day"],
                include=["invitations", "answered_invitations"],
                name="dailydelivery_campaign_day",
            )
        ]

    def __str__(self):
        answered, delivered = self.answered_invitations, self.invitations
        return f"{self.day} {self.campaign_id}: {answered}/{delivered}"


class DailyScoreChange(models.Model):
    """
    What a write did to DailyScore, appended by the triggers and folded into it by
    surveys.rollups.rollups_fold (before each read, and by beat): appending takes
    no lock, so answers to one campaign never wait for each other on a day's row.
    """

    day = models.DateField()
    campaign_id = models.IntegerField()
    survey_id = models.IntegerField()
    score = models.PositiveSmallIntegerField()
    answers = models.IntegerField()  # + or −

    def __str__(self):
        return f"{self.day} {self.campaign_id} {self.score}: {self.answers:+d}"


class DailyDeliveryChange(models.Model):
    """What a write did to DailyDelivery, appended and folded like
    DailyScoreChange."""

    day = models.DateField()
    campaign_id = models.IntegerField()
    invitations = models.IntegerField()
    answered_invitations = models.IntegerField()

    def __str__(self):
        return f"{self.day} {self.campaign_id}: {self.invitations:+d}"


class ResponseRevision(models.Model):
    """An earlier version of a response, kept when the customer changed it."""

    response = models.ForeignKey(
        Response,
        on_delete=models.CASCADE,
        related_name="revisions",
        verbose_name=pgettext_lazy("survey answer", "response"),
    )
    score = models.PositiveSmallIntegerField(_("score"), null=True, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    # {question id: value} as it was.
    answers = models.JSONField(_("answers"), default=dict)
    answered_at = models.DateTimeField(_("answered at"))
    replaced_at = models.DateTimeField(_("replaced at"), default=timezone.now)

    class Meta:
        verbose_name = _("earlier answer")
        verbose_name_plural = _("earlier answers")
        ordering = ["response", "-replaced_at", "-id"]

    def __str__(self):
        return f"{self.response_id} @ {self.answered_at:%Y-%m-%d %H:%M}"
