import re

from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from cxm.jsonvalues import JSONListField, JSONObjectField, validate_json_object


class Locale(models.TextChoices):
    EN = "en", _("English")
    KO = "ko", _("Korean")


# Why a customer may not be emailed, each recorded as the time it first happened:
# the one list the rule below, is_contactable and the audience preview read.
SUPPRESSIONS = {
    "unsubscribed": "unsubscribed_at",
    "bounced": "bounced_at",
    "complained": "complained_at",
}
# Customers we may email: none of the above. The one rule, as a condition, so
# counts can use it in a filter too.
CONTACTABLE = models.Q(**{f"{field}__isnull": True for field in SUPPRESSIONS.values()})


class CustomerQuerySet(models.QuerySet):
    def contactable(self):
        """Customers we may email (CONTACTABLE)."""
        return self.filter(CONTACTABLE)


class Customer(models.Model):
    email = models.EmailField(_("email"), max_length=254)
    name = models.CharField(_("name"), max_length=200, blank=True)
    locale = models.CharField(
        _("language"), max_length=5, choices=Locale.choices, default=Locale.EN
    )
    external_id = models.CharField(
        _("external id"),
        max_length=100,
        blank=True,
        default="",
        help_text=_("The customer's id in your CRM or shop; unique when given."),
    )
    properties = JSONObjectField(
        _("properties"),
        default=dict,
        blank=True,
        help_text=_('Free attributes used for segments, e.g. {"plan": "pro"}.'),
        validators=[validate_json_object],
    )
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced at"), null=True, blank=True)
    complained_at = models.DateTimeField(
        _("complained at"),
        null=True,
        blank=True,
        help_text=_("When the customer reported one of our emails as spam."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(
                Lower("email"),
                name="customer_email_unique_ci",
                violation_error_message=_("A customer with this email already exists."),
            ),
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="customer_external_id_unique",
                violation_error_message=_(
                    "A customer with this external id already exists."
                ),
            ),
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self):
        return f"{self.name} <{self.email}>" if self.name else self.email

    def get_absolute_url(self):
        """The customer's staff page: their history and answers."""
        return reverse("customers:detail", args=[self.pk])

    @property
    def is_contactable(self) -> bool:
        return all(getattr(self, field) is None for field in SUPPRESSIONS.values())


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    APP = "app", _("App")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    CHAT = "chat", _("Chat")
    STORE = "store", _("Store")
    SOCIAL = "social", _("Social media")
    OTHER = "other", _("Other")


# A kind is a word an integrator chooses (purchase, support_call, app_visit): the
# name segments and triggers match on, so it is kept to a plain identifier.
INTERACTION_KIND = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


validate_interaction_kind = RegexValidator(
    INTERACTION_KIND,
    _(
        "%(value)r is not an interaction kind: use lowercase letters, digits, _, . "
        "and -, starting with a letter (e.g. purchase)."
    ),
    code="not_a_kind",
)


class Interaction(models.Model):
    """One event in a customer's history: a purchase, a support call, a visit."""

    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="interactions",
        verbose_name=_("customer"),
    )
    kind = models.CharField(
        _("kind"),
        max_length=64,
        validators=[validate_interaction_kind],
        help_text=_("What happened, e.g. purchase, support_call, app_visit."),
    )
    channel = models.CharField(
        _("channel"), max_length=10, choices=Channel.choices, default=Channel.OTHER
    )
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    properties = JSONObjectField(
        _("properties"),
        default=dict,
        blank=True,
        help_text=_('Details of the event, e.g. {"order_total": 42.5}.'),
        validators=[validate_json_object],
    )
    external_id = models.CharField(
        _("external id"),
        max_length=100,
        blank=True,
        default="",
        help_text=_(
            "The event's id in your system: a retried call with the same id "
            "records the interaction once."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="interaction_external_id_unique",
                violation_error_message=_(
                    "An interaction with this external id already exists."
                ),
            ),
        ]
        indexes = [
            # Segments' "had a K in the last N days".
            models.Index(
                fields=["customer", "kind", "occurred_at"],
                name="interaction_customer_kind",
            ),
            # The customer's timeline (customers.timeline): newest first, any kind.
            models.Index(
                fields=["customer", "occurred_at", "id"],
                name="interaction_customer_time",
            ),
            # Segments and triggers that start from a kind and a time window.
            models.Index(fields=["kind", "occurred_at"], name="interaction_kind"),
        ]

    def __str__(self):
        return f"{self.kind} ({self.get_channel_display()}), {self.customer}"


class Match(models.TextChoices):
    ALL = "all", _("All conditions")
    ANY = "any", _("Any condition")


def validate_segment_conditions(value) -> None:
    # The conditions' rules live with the types apps register (segments.py).
    from .segments import validate_conditions

    validate_conditions(value)


class Segment(models.Model):
    """A saved, named group of customers: conditions combined with all or any."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    description = models.TextField(_("description"), blank=True)
    match = models.CharField(
        _("match"), max_length=3, choices=Match.choices, default=Match.ALL
    )
    conditions = JSONListField(
        _("conditions"),
        default=list,
        blank=True,
        validators=[validate_segment_conditions],
        help_text=_(
            "A list of conditions; none means every customer. See the README for "
            "the kinds of condition."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self):
        return self.name
