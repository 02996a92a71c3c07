import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from cxm.customers.models import Customer
from cxm.jsonvalues import JSONObjectField, json_problem

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


PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# Each property is one more condition in the query that selects the audience, and
# SQLite refuses a query whose expression tree is too large (about 1,000 deep).
AUDIENCE_MAX_PROPERTIES = 50


def validate_audience(value) -> None:
    """Raises ValidationError unless value maps property names to plain values."""
    if not isinstance(value, dict):
        raise ValidationError(
            _(
                "The audience must be an object of property values, "
                'e.g. {"plan": "pro"}.'
            )
        )
    if len(value) > AUDIENCE_MAX_PROPERTIES:
        raise ValidationError(
            _("An audience may match at most %(limit)d properties."),
            params={"limit": AUDIENCE_MAX_PROPERTIES},
        )
    for key, item in value.items():
        if not PROPERTY_NAME.fullmatch(key) or "__" in key:
            raise ValidationError(
                _("%(key)r is not a property name: use letters, digits, - and _."),
                params={"key": key},
            )
        if not isinstance(item, str | int | float | bool):
            raise ValidationError(
                _("The value of %(key)r must be text, a number or true/false."),
                params={"key": key},
            )
    if problem := json_problem(value):
        raise ValidationError(problem, code="not_storable")


def audience_filter(audience: dict) -> models.Q:
    """Returns the condition on Customer that selects an audience."""
    # __exact: a property named like a lookup ("contains", "isnull") is still a key.
    return models.Q(
        **{f"properties__{key}__exact": value for key, value in audience.items()}
    )


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200)
    survey = models.ForeignKey(
        Survey,
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("survey"),
    )
    audience = JSONObjectField(
        _("audience"),
        default=dict,
        blank=True,
        validators=[validate_audience],
        help_text=_(
            'Customers whose properties match all these values, e.g. {"plan": "pro"}. '
            "Empty: all customers."
        ),
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
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class InvitationStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")
    ANSWERED = "answered", _("Answered")


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
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # A complaint (the customer marked the email as spam) comes after delivery, so
    # it is recorded beside the delivery state rather than as one.
    complained_at = models.DateTimeField(_("complained at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer"], name="invitation_one_per_customer"
            )
        ]
        indexes = [
            # The sweep's query: queued (or stuck sending) rows by due time.
            models.Index(
                fields=["due_at"],
                name="invitation_due",
                condition=models.Q(status__in=["queued", "sending"]),
            ),
        ]

    def __str__(self):
        return f"{self.campaign} → {self.customer}"

    def get_absolute_url(self):
        return reverse("surveys:answer", args=[self.token])

    @property
    def link(self) -> str:
        return settings.SITE_URL + self.get_absolute_url()


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
            # campaign and customer have their foreign keys' indexes.
            models.Index(fields=["created_at"], name="response_created"),
            models.Index(fields=["survey", "created_at"], name="response_survey_time"),
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
