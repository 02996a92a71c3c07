from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from cxm.jsonvalues import JSONObjectField, validate_json_object


class Locale(models.TextChoices):
    EN = "en", _("English")
    KO = "ko", _("Korean")


class CustomerQuerySet(models.QuerySet):
    def contactable(self):
        """Customers we may email: not unsubscribed, bounced or complained."""
        return self.filter(
            unsubscribed_at__isnull=True,
            bounced_at__isnull=True,
            complained_at__isnull=True,
        )


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

    @property
    def is_contactable(self) -> bool:
        return (
            self.unsubscribed_at is None
            and self.bounced_at is None
            and self.complained_at is None
        )
