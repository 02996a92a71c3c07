from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from surveys.models import Response


class FollowUpStatus(models.TextChoices):
    OPEN = "open", _("Open")
    OVERDUE = "overdue", _("Overdue")
    RESOLVED = "resolved", _("Resolved")


class Priority(models.TextChoices):
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class RootCause(models.TextChoices):
    PRODUCT = "product", _("Product or quality")
    SERVICE = "service", _("Customer service")
    DELIVERY = "delivery", _("Delivery or availability")
    PRICE = "price", _("Price or billing")
    USABILITY = "usability", _("Ease of use")
    COMMUNICATION = "communication", _("Communication")
    OTHER = "other", _("Other")


class FollowUpQuerySet(models.QuerySet):
    def unresolved(self):
        return self.exclude(status=FollowUpStatus.RESOLVED)

    def overdue(self, now=None):
        """Unresolved follow-ups past due, whether or not a sweep saw them."""
        return self.unresolved().filter(due_at__lt=now or timezone.now())


class FollowUp(models.Model):
    response = models.OneToOneField(
        Response,
        on_delete=models.CASCADE,
        related_name="followup",
        verbose_name=_("response"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("owner"),
    )
    priority = models.CharField(
        _("priority"), max_length=10, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=FollowUpStatus.choices,
        default=FollowUpStatus.OPEN,
    )
    due_at = models.DateTimeField(_("due at"))
    created_at = models.DateTimeField(_("opened at"), default=timezone.now)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    owner_notified_at = models.DateTimeField(
        _("owner notified at"), null=True, blank=True
    )
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution = models.TextField(_("resolution"), blank=True)
    root_cause = models.CharField(
        _("root cause"), max_length=20, choices=RootCause.choices, blank=True
    )

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="resolved")
                | (models.Q(resolved_at__isnull=False) & ~models.Q(root_cause="")),
                name="followup_resolved_has_when_and_cause",
            )
        ]
        indexes = [
            models.Index(fields=["status", "due_at"]),
            models.Index(fields=["owner", "status"]),
        ]

    def __str__(self):
        return _("Follow-up #%(id)s") % {"id": self.pk}

    def get_absolute_url(self):
        return reverse("followups:detail", args=[self.pk])

    @property
    def link(self) -> str:
        return settings.SITE_URL + self.get_absolute_url()

    @property
    def customer(self):
        return self.response.customer

    @property
    def is_overdue(self) -> bool:
        return self.status != FollowUpStatus.RESOLVED and self.due_at < timezone.now()


class EventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    ASSIGNED = "assigned", _("Assigned")
    PRIORITY_CHANGED = "priority", _("Priority changed")
    OWNER_NOTIFIED = "owner_notified", _("Owner notified")
    NOTE = "note", _("Note")
    ANSWER_CHANGED = "answer_changed", _("Customer changed the answer")
    COMMENTED = "commented", _("Customer added to the answer")
    OVERDUE = "overdue", _("Overdue")
    ESCALATED = "escalated", _("Escalated")
    RESOLVED = "resolved", _("Resolved")


class FollowUpEvent(models.Model):
    """One entry of a follow-up's timeline."""

    followup = models.ForeignKey(
        FollowUp,
        on_delete=models.CASCADE,
        related_name="events",
        verbose_name=_("follow-up"),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=EventKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    # What people wrote (a note, a resolution, the customer's comment) or names;
    # never a sentence of ours, which description() renders in the reader's language.
    text = models.TextField(_("text"), blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)
    created_at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("follow-up event")
        verbose_name_plural = _("follow-up events")
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"{self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"

    def description(self) -> str:
        """What happened, in the active language."""
        data = self.data or {}
        if "score" in data:  # opened, answer changed
            score = gettext("Score %(score)d.") % {"score": data["score"]}
            return f"{score} {self.text}".strip()
        if "priority" in data:
            return str(Priority(data["priority"]).label)
        if self.kind == EventKind.ASSIGNED and not self.text:
            return gettext("Unassigned")
        if self.kind == EventKind.ESCALATED and not self.text:
            return gettext("No CX manager to notify.")
        return self.text

    description.short_description = _("what happened")


class AgentTurn(models.Model):
    """
    An agent's place in the round robin: when they were last given a follow-up.
    Choosing the next owner locks one of these rows (SKIP LOCKED), not every
    follow-up, so detractors answering at once do not wait on each other.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="agent_turn",
        verbose_name=_("agent"),
    )
    last_assigned_at = models.DateTimeField(
        _("last assigned at"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("agent turn")
        verbose_name_plural = _("agent turns")

    def __str__(self):
        return str(self.user)
