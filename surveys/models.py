import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from cxm.customers.models import Customer
from cxm.jsonvalues import JSONObjectField, json_problem


class SurveyKind(models.TextChoices):
    NPS = "nps", _("NPS (0–10)")


# The score scale of each kind: (lowest, highest).
SCORE_RANGE = {SurveyKind.NPS: (0, 10)}


class NpsBucket(models.TextChoices):
    DETRACTOR = "detractor", _("Detractor")
    PASSIVE = "passive", _("Passive")
    PROMOTER = "promoter", _("Promoter")


# NPS buckets: 9–10 promoter, 7–8 passive, 0–6 detractor. metrics.py counts with
# the same two numbers in SQL.
NPS_PROMOTER_MIN = 9
NPS_DETRACTOR_MAX = 6


def nps_bucket(score: int) -> str:
    """Returns the NPS bucket of a 0–10 score."""
    if score >= NPS_PROMOTER_MIN:
        return NpsBucket.PROMOTER
    if score > NPS_DETRACTOR_MAX:
        return NpsBucket.PASSIVE
    return NpsBucket.DETRACTOR


class Survey(models.Model):
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(
        _("kind"), max_length=10, choices=SurveyKind.choices, default=SurveyKind.NPS
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("survey")
        verbose_name_plural = _("surveys")
        ordering = ["-created_at"]

    def __str__(self):
        return self.name

    @property
    def score_range(self) -> tuple[int, int]:
        return SCORE_RANGE[self.kind]


class QuestionKind(models.TextChoices):
    SCORE = "score", _("Score")
    COMMENT = "comment", _("Open comment")


class Question(models.Model):
    survey = models.ForeignKey(
        Survey,
        on_delete=models.CASCADE,
        related_name="questions",
        verbose_name=_("survey"),
    )
    position = models.PositiveSmallIntegerField(_("position"))
    kind = models.CharField(_("kind"), max_length=10, choices=QuestionKind.choices)
    text = models.CharField(
        _("text"),
        max_length=500,
        blank=True,
        help_text=_(
            "Leave empty for the standard wording, translated for each customer."
        ),
    )
    required = models.BooleanField(_("required"), default=False)

    class Meta:
        verbose_name = _("question")
        verbose_name_plural = _("questions")
        ordering = ["survey", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["survey", "position"], name="question_position_unique"
            )
        ]

    def __str__(self):
        return self.display_text()

    def display_text(self) -> str:
        """Returns the question as the customer reads it, in the active language."""
        if self.text:
            return self.text.replace("{company}", settings.COMPANY_NAME)
        if self.kind == QuestionKind.SCORE:
            return gettext(
                "How likely are you to recommend %(company)s to a friend or colleague?"
            ) % {"company": settings.COMPANY_NAME}
        return gettext("What is the main reason for your score?")


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
    invitation = models.OneToOneField(
        Invitation,
        on_delete=models.CASCADE,
        related_name="response",
        verbose_name=_("invitation"),
    )
    score = models.PositiveSmallIntegerField(_("score"))
    comment = models.TextField(_("comment"), blank=True)
    created_at = models.DateTimeField(_("answered at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = pgettext_lazy("survey answer", "response")
        verbose_name_plural = pgettext_lazy("survey answers", "responses")
        ordering = ["-created_at", "-id"]
        constraints = [
            # The widest scale of any kind; the service checks the survey's own range.
            models.CheckConstraint(
                condition=models.Q(score__gte=0, score__lte=10),
                name="response_score_range",
            )
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self):
        return f"{self.invitation.customer}: {self.score}"

    @property
    def nps_bucket(self) -> str:
        return nps_bucket(self.score)
