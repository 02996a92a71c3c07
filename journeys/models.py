from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cxm.customers.models import Segment, validate_interaction_kind
from surveys.models import Campaign


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    APP = "app", _("Mobile app")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    STORE = "store", _("Store")
    CHAT = "chat", _("Chat")
    SOCIAL = "social", _("Social media")
    OTHER = "other", _("Other")


class Emotion(models.IntegerChoices):
    """How a customer feels at a touchpoint, −2…2: the curve of the journey map.

    The team's expectation is one of these; the measured emotion is the headline
    score put on the same scale (selectors.measured_emotion).
    """

    VERY_NEGATIVE = -2, _("Very negative")
    NEGATIVE = -1, pgettext_lazy("emotion", "Negative")
    NEUTRAL = 0, pgettext_lazy("emotion", "Neutral")
    POSITIVE = 1, pgettext_lazy("emotion", "Positive")
    VERY_POSITIVE = 2, _("Very positive")


# The stages a new journey starts with (renamable): the classic five.
DEFAULT_STAGES = [
    _("Awareness"),
    _("Consideration"),
    _("Purchase"),
    _("Use"),
    _("Loyalty and advocacy"),
]


class Persona(models.Model):
    """A reusable portrait of a kind of customer, standing for a segment."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    segment = models.ForeignKey(
        Segment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="personas",
        verbose_name=_("segment"),
        help_text=_("The customers this persona stands for."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("persona")
        verbose_name_plural = _("personas")
        ordering = ["name"]

    def __str__(self):
        return self.name


class Journey(models.Model):
    name = models.CharField(_("name"), max_length=200)
    persona = models.ForeignKey(
        Persona,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="journeys",
        verbose_name=_("persona"),
    )
    description = models.TextField(_("description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("journey")
        verbose_name_plural = _("journeys")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("journeys:map", args=[self.pk])


class Stage(models.Model):
    journey = models.ForeignKey(
        Journey,
        on_delete=models.CASCADE,
        related_name="stages",
        verbose_name=_("journey"),
    )
    name = models.CharField(_("name"), max_length=200)
    position = models.PositiveSmallIntegerField(_("position"))

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        # No unique position: reordering in the admin saves one row at a time, and
        # a swap would collide half-way. Ties keep the order they were added in.
        ordering = ["journey", "position", "pk"]

    def __str__(self):
        return self.name


class Touchpoint(models.Model):
    stage = models.ForeignKey(
        Stage,
        on_delete=models.CASCADE,
        related_name="touchpoints",
        verbose_name=_("stage"),
    )
    name = models.CharField(_("name"), max_length=200)
    channel = models.CharField(_("channel"), max_length=10, choices=Channel.choices)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    interaction_kind = models.CharField(
        _("interaction kind"),
        max_length=64,
        blank=True,
        validators=[validate_interaction_kind],
        help_text=_(
            "The kind of interaction that marks a customer passing through this "
            "touchpoint, e.g. purchase; the drop-off between stages counts these."
        ),
    )
    campaigns = models.ManyToManyField(
        Campaign,
        blank=True,
        related_name="touchpoints",
        verbose_name=_("campaigns"),
        help_text=_("The campaigns whose answers measure this touchpoint."),
    )
    expected_emotion = models.SmallIntegerField(
        _("expected emotion"),
        choices=Emotion.choices,
        default=Emotion.NEUTRAL,
        help_text=_("How the team expects customers to feel here."),
    )

    class Meta:
        verbose_name = _("touchpoint")
        verbose_name_plural = _("touchpoints")
        ordering = ["stage", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(expected_emotion__gte=-2, expected_emotion__lte=2),
                name="touchpoint_expected_emotion_range",
            )
        ]

    def __str__(self):
        return f"{self.name} ({self.get_channel_display()})"
