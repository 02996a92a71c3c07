import secrets
from datetime import time
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from surveys.kinds import KINDS, SurveyKind
from surveys.models import Response


def list_workdays() -> list[int]:
    """Monday to Friday."""
    return [0, 1, 2, 3, 4]


class FollowUpStatus(models.TextChoices):
    """
    The workflow. "Overdue" is no status: it is derived from the due times
    (FollowUp.is_overdue, FollowUpQuerySet.overdue) so that it is never stale.
    """

    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    WAITING = "waiting", _("Waiting on customer")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")


# The statuses of a follow-up someone still has to work on; the SLA clocks run.
UNRESOLVED = (FollowUpStatus.NEW, FollowUpStatus.CONTACTED, FollowUpStatus.WAITING)


class Priority(models.TextChoices):
    NORMAL = "normal", _("Normal")
    HIGH = "high", _("High")


class RootCause(models.Model):
    """One entry of the managed list of root causes a resolution names."""

    code = models.SlugField(
        _("code"),
        max_length=40,
        unique=True,
        help_text=_("A short name for the API and exports; keep it stable."),
    )
    name_en = models.CharField(_("name in English"), max_length=100)
    name_ko = models.CharField(_("name in Korean"), max_length=100)
    active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Inactive causes stay on old follow-ups but are not offered."),
    )
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("root cause")
        verbose_name_plural = _("root causes")
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name

    @property
    def name(self) -> str:
        """The name in the active language."""
        if (get_language() or "").startswith("ko") and self.name_ko:
            return self.name_ko
        return self.name_en


class Team(models.Model):
    """
    The people who work a share of the follow-ups, their manager, and the hours
    their SLA clocks count (services.sla_due_at).
    """

    name = models.CharField(_("name"), max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="TeamMember",
        related_name="followup_teams",
        blank=True,
        verbose_name=_("members"),
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_followup_teams",
        verbose_name=_("manager"),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default="UTC",
        help_text=_("An IANA time zone, such as Asia/Seoul or America/New_York."),
    )
    business_hours_only = models.BooleanField(
        _("count business hours only"),
        default=False,
        help_text=_(
            "SLA clocks count only the hours below, on working days that are no "
            "public holiday; otherwise they count every hour."
        ),
    )
    workday_start = models.TimeField(_("working day starts"), default=time(9))
    workday_end = models.TimeField(_("working day ends"), default=time(18))
    # Monday 0 … Sunday 6, as datetime.weekday().
    workdays = models.JSONField(_("working days"), default=list_workdays)
    holiday_country = models.CharField(
        _("public holidays of"),
        max_length=2,
        blank=True,
        help_text=_("A country code (KR, US, GB …); blank for none."),
    )
    slack_webhook_url = models.URLField(
        _("Slack webhook"),
        max_length=500,
        blank=True,
        help_text=_(
            "A Slack incoming-webhook address (https://hooks.slack.com/…): new "
            "high-priority follow-ups and missed SLAs are posted there. Blank: none."
        ),
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(workday_start__lt=models.F("workday_end")),
                name="team_workday_starts_before_it_ends",
            )
        ]

    def __str__(self):
        return self.name


class TeamMember(models.Model):
    """
    A member of a team, and their place in its round robin: when they were last
    given one of its follow-ups. Choosing the next owner locks one of these rows
    (SKIP LOCKED), so detractors answering at once do not wait on each other.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="followup_team_memberships",
        verbose_name=_("member"),
    )
    available = models.BooleanField(
        _("available"),
        default=True,
        help_text=_("Unavailable members (on leave) get no new follow-ups."),
    )
    last_assigned_at = models.DateTimeField(
        _("last assigned at"), null=True, blank=True
    )

    class Meta:
        verbose_name = _("team member")
        verbose_name_plural = _("team members")
        constraints = [
            models.UniqueConstraint(
                fields=["team", "user"], name="teammember_once_per_team"
            )
        ]

    def __str__(self):
        return f"{self.team}: {self.user}"


class Assignment(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round robin among the team's members")
    ACCOUNT_OWNER = "account_owner", _("The customer's account owner, else round robin")
    NOBODY = "nobody", _("Nobody: assigned by hand")


class FollowUpRule(models.Model):
    """
    When an answer opens a follow-up, and how: the active rules are tried in
    order of position and the first that matches decides (services.followup_rule_match).
    """

    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(_("position"), default=0)
    active = models.BooleanField(_("active"), default=True)
    # Conditions: each one set must hold.
    survey = models.ForeignKey(
        "surveys.Survey",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("survey"),
        help_text=_("Only answers to this survey; blank for any."),
    )
    survey_kind = models.CharField(
        _("survey kind"),
        max_length=10,
        choices=[(k, label) for k, label in SurveyKind.choices if k in KINDS],
        blank=True,
        help_text=_("Only answers to surveys of this kind; blank for any."),
    )
    score_low = models.PositiveSmallIntegerField(
        _("lowest score"), null=True, blank=True
    )
    score_high = models.PositiveSmallIntegerField(
        _("highest score"), null=True, blank=True
    )
    comment_words = models.JSONField(
        _("words in the comment"),
        default=list,
        blank=True,
        help_text=_(
            "Matches a comment containing any of these words (any case); "
            "empty for any comment."
        ),
    )
    customer_properties = models.JSONField(
        _("customer properties"),
        default=dict,
        blank=True,
        help_text=_('Each must equal the customer\'s, e.g. {"plan": "enterprise"}.'),
    )
    segment = models.ForeignKey(
        "customers.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("segment"),
        help_text=_("Only customers in this segment; blank for any."),
    )
    # Outcome.
    priority = models.CharField(
        _("priority"),
        max_length=10,
        choices=Priority.choices,
        blank=True,
        help_text=_(
            "Blank: high for the angriest scores (NPS 0–3, CSAT 1, CES 1), "
            "normal otherwise."
        ),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rules",
        verbose_name=_("team"),
        help_text=_("Blank: no team; any CX agent works it."),
    )
    assignment = models.CharField(
        _("assign to"),
        max_length=20,
        choices=Assignment.choices,
        default=Assignment.ROUND_ROBIN,
    )
    first_contact_sla_hours = models.DecimalField(
        _("first contact within (hours)"),
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Blank: no first-contact SLA."),
    )
    resolution_sla_hours = models.DecimalField(
        _("resolution within (hours)"),
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Blank: the FOLLOWUP_SLA_HOURS setting."),
    )

    class Meta:
        verbose_name = _("follow-up rule")
        verbose_name_plural = _("follow-up rules")
        ordering = ["position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(score_low__isnull=True)
                | models.Q(score_high__isnull=True)
                | models.Q(score_low__lte=models.F("score_high")),
                name="followuprule_score_range_in_order",
            ),
        ]

    def __str__(self):
        return self.name


def overdue_q(now) -> models.Q:
    """
    Unresolved and past a due time: the resolution's, or the first contact's
    while nobody has contacted the customer. The one definition of "overdue".
    """
    return models.Q(status__in=UNRESOLVED) & (
        models.Q(due_at__lt=now)
        | models.Q(first_contact_at__isnull=True, first_contact_due_at__lt=now)
    )


class FollowUpQuerySet(models.QuerySet):
    def unresolved(self):
        return self.filter(status__in=UNRESOLVED)

    def overdue(self, now=None):
        return self.filter(overdue_q(now or timezone.now()))

    def not_overdue(self, now=None):
        return self.exclude(overdue_q(now or timezone.now()))


class FollowUp(models.Model):
    # One follow-up per answer at most, in the database: no race opens two.
    response = models.OneToOneField(
        Response,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="followup",
        verbose_name=_("response"),
    )
    # The customer, also for follow-ups opened by hand without an answer.
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="followups",
        verbose_name=_("customer"),
    )
    rule = models.ForeignKey(
        FollowUpRule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("opened by rule"),
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("team"),
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
        default=FollowUpStatus.NEW,
    )
    first_contact_due_at = models.DateTimeField(
        _("first contact due at"), null=True, blank=True
    )
    first_contact_at = models.DateTimeField(
        _("first contact at"), null=True, blank=True
    )
    due_at = models.DateTimeField(_("due at"))
    created_at = models.DateTimeField(_("opened at"), default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("opened by"),
        help_text=_("Who opened it by hand; blank when a rule did."),
    )
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    # When the current owner was emailed about it; the sweep resends while blank.
    owner_notified_at = models.DateTimeField(
        _("owner notified at"), null=True, blank=True
    )
    # Whether a person acted on it (assigned by hand, noted, contacted, moved it):
    # until then a kinder answer closes it as "no action needed".
    touched_at = models.DateTimeField(_("first handled at"), null=True, blank=True)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True)
    # The second breach level (FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS past due).
    escalated_again_at = models.DateTimeField(
        _("escalated again at"), null=True, blank=True
    )
    # The due times the owner was last reminded of: a due time moved (a reopen, a
    # new SLA) differs from it, and reminds again.
    first_contact_reminded_for = models.DateTimeField(
        _("reminded of the first contact due at"), null=True, blank=True
    )
    resolution_reminded_for = models.DateTimeField(
        _("reminded of the resolution due at"), null=True, blank=True
    )
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
    root_cause = models.ForeignKey(
        RootCause,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followups",
        verbose_name=_("root cause"),
    )
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    no_action_needed = models.BooleanField(
        _("no action needed"),
        default=False,
        help_text=_("Closed because the customer changed to a kinder answer."),
    )
    # The recovery check-in after resolution ("Did we resolve your issue?"): when
    # it went out and what the customer said; the reports' recovery rate is the
    # share of answered check-ins that say yes.
    checkin_sent_at = models.DateTimeField(_("check-in sent at"), null=True, blank=True)
    recovered = models.BooleanField(
        _("recovered"),
        null=True,
        blank=True,
        help_text=_("The customer's answer to the check-in; blank until they answer."),
    )
    recovered_at = models.DateTimeField(
        _("check-in answered at"), null=True, blank=True
    )

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        ordering = ["due_at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="resolved")
                | models.Q(resolved_at__isnull=False, root_cause__isnull=False),
                name="followup_resolved_has_when_and_cause",
            ),
            models.CheckConstraint(
                condition=~models.Q(status="closed")
                | models.Q(closed_at__isnull=False),
                name="followup_closed_has_when",
            ),
        ]
        indexes = [
            # The queue's default: the unresolved, in an index-only scan that
            # carries every column its order and visibility read (the order puts
            # overdue first, which depends on now, so it sorts these rows); and
            # the sweep's "past due" scan. Partial: resolved history weighs nothing.
            models.Index(
                fields=["due_at", "id"],
                include=[
                    "status",
                    "priority",
                    "owner",
                    "team",
                    "first_contact_at",
                    "first_contact_due_at",
                ],
                condition=models.Q(status__in=UNRESOLVED),
                name="followup_unresolved_due",
            ),
            models.Index(
                fields=["team", "due_at", "id"],
                condition=models.Q(status__in=UNRESOLVED),
                name="followup_team_unresolved_due",
            ),
            # The sweep's "first contact late" scan.
            models.Index(
                fields=["first_contact_due_at"],
                condition=models.Q(
                    status__in=UNRESOLVED, first_contact_at__isnull=True
                ),
                name="followup_first_contact_due",
            ),
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["status", "resolved_at"]),
        ]

    def __str__(self):
        return _("Follow-up #%(id)s") % {"id": self.pk}

    def get_absolute_url(self):
        return reverse("followups:detail", args=[self.pk])

    @property
    def link(self) -> str:
        return settings.SITE_URL + self.get_absolute_url()

    @property
    def is_unresolved(self) -> bool:
        return self.status in UNRESOLVED

    @property
    def is_overdue(self) -> bool:
        """The one rule of overdue_q, on one row already loaded."""
        if not self.is_unresolved:
            return False
        now = timezone.now()
        return self.due_at < now or (
            self.first_contact_at is None
            and self.first_contact_due_at is not None
            and self.first_contact_due_at < now
        )


class EventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    ASSIGNED = "assigned", _("Assigned")
    PRIORITY_CHANGED = "priority", _("Priority changed")
    OWNER_NOTIFIED = "owner_notified", _("Owner notified")
    NOTE = "note", _("Note")
    ANSWER_CHANGED = "answer_changed", _("Customer changed the answer")
    COMMENTED = "commented", _("Customer added to the answer")
    CONTACTED = "contacted", _("Customer contacted")
    STATUS_CHANGED = "status", _("Status changed")
    # Written by the sweep before overdue was derived; kept for old timelines.
    OVERDUE = "overdue", _("Overdue")
    ESCALATED = "escalated", _("Escalated")
    ESCALATED_AGAIN = "escalated_again", _("Escalated again")
    REMINDED = "reminded", _("Owner reminded")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")
    REOPENED = "reopened", _("Reopened")
    NO_ACTION_NEEDED = "no_action", _("Closed: no action needed")
    NOTIFIED = "notified", _("Notified")
    REPLIED = "replied", _("Customer replied")
    CHECKIN_SENT = "checkin_sent", _("Check-in sent")
    CHECKIN_ANSWERED = "checkin_answered", _("Customer answered the check-in")


class ContactChannel(models.TextChoices):
    PHONE = "phone", _("Phone call")
    EMAIL = "email", _("Email")
    MEETING = "meeting", _("Meeting")
    OTHER = "other", _("Other")


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
        indexes = [models.Index(fields=["followup", "created_at"])]

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
        if "status" in data:
            status = str(FollowUpStatus(data["status"]).label)
            return f"{status}. {self.text}".strip() if self.text else status
        if "recovered" in data:  # the check-in's answer
            if data["recovered"]:
                return gettext("Yes: the issue is resolved.")
            return gettext("No: the issue is not resolved.")
        if "channel" in data:
            channel = str(ContactChannel(data["channel"]).label)
            return f"{channel}: {self.text}".strip(": ")
        if (
            self.kind == EventKind.ASSIGNED
            and data.get("previous")
            and not data.get("owner")
        ):
            return gettext("Unassigned; it was %(previous)s's.") % data
        if self.kind == EventKind.ASSIGNED and data.get("owner"):
            return gettext("From %(previous)s to %(owner)s") % {
                "previous": data.get("previous") or gettext("nobody"),
                "owner": data.get("owner") or gettext("nobody"),
            }
        if self.kind == EventKind.ASSIGNED and not self.text:
            return gettext("Unassigned")
        if self.kind in (EventKind.ESCALATED, EventKind.ESCALATED_AGAIN) and (
            not self.text
        ):
            return gettext("No CX manager to notify.")
        if self.kind == EventKind.REMINDED and data.get("sla") == "first_contact":
            return gettext("First contact due soon: %(recipient)s") % {
                "recipient": self.text
            }
        if self.kind == EventKind.REMINDED:
            return gettext("Resolution due soon: %(recipient)s") % {
                "recipient": self.text
            }
        return self.text

    description.short_description = _("what happened")


class AgentTurn(models.Model):
    """
    An agent's place in the round robin of follow-ups without a team (a team's
    round robin keeps its turns on TeamMember): when they were last given a follow-up.
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


class NoticeKind(models.TextChoices):
    REASSIGNED_AWAY = "reassigned_away", _("Follow-up given to someone else")
    REPLIED = "replied", _("The customer replied")
    NOT_RECOVERED = "not_recovered", _("The customer says it is not resolved")
    SLACK_OPENED = "slack_opened", _("Slack: new high-priority follow-up")
    SLACK_BREACHED = "slack_breached", _("Slack: SLA missed")


# The notices posted to the follow-up team's Slack webhook rather than emailed.
SLACK_NOTICES = (NoticeKind.SLACK_OPENED, NoticeKind.SLACK_BREACHED)


class FollowUpNotice(models.Model):
    """
    A message owed about a follow-up, beyond the owner's own email (which
    FollowUp.owner_notified_at tracks): an email to someone, or a post to the
    team's Slack; a row with a due time the sweep sends once
    (services.followup_notice_send), so a lost message is resent and a repeated
    one sends nothing.
    """

    followup = models.ForeignKey(
        FollowUp, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(_("kind"), max_length=20, choices=NoticeKind.choices)
    # Blank for a Slack post, which goes to the follow-up team's webhook.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recipient"),
    )
    # Who the follow-up went to, for the email (it may change again before then).
    new_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    due_at = models.DateTimeField(_("due at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Failed tries (Slack answering an error): each pushes due_at further back.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)

    class Meta:
        verbose_name = _("follow-up notice")
        verbose_name_plural = _("follow-up notices")
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(sent_at__isnull=True),
                name="followupnotice_unsent_due",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} → {self.recipient or 'Slack'}"


class MessageDirection(models.TextChoices):
    OUT = "out", _("To the customer")
    IN = "in", _("From the customer")


class MessageKind(models.TextChoices):
    REPLY = "reply", _("Reply")
    CHECKIN = "checkin", _("Check-in")
    INBOUND = "inbound", _("Customer's email")


def new_message_token() -> str:
    """A random token of 128 bits, in lowercase hex: it survives an email address."""
    return secrets.token_hex(16)


class FollowUpMessage(models.Model):
    """
    An email between us and the customer about a follow-up: a reply an agent
    wrote, the recovery check-in, or the customer's own email posted back by the
    email service. An outgoing one is a row due at `due_at` until it is sent
    (services.followup_message_send), so a lost task is resent by the sweep with
    the same Message-ID. Its token names it in the Reply-To address and in the
    check-in's links.
    """

    followup = models.ForeignKey(
        FollowUp,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("follow-up"),
    )
    direction = models.CharField(
        _("direction"), max_length=3, choices=MessageDirection.choices
    )
    kind = models.CharField(_("kind"), max_length=10, choices=MessageKind.choices)
    token = models.CharField(
        _("token"), max_length=32, unique=True, default=new_message_token
    )
    subject = models.CharField(_("subject"), max_length=255)
    body = models.TextField(_("body"), blank=True)
    from_email = models.CharField(_("from"), max_length=320, blank=True)
    to_email = models.CharField(_("to"), max_length=320, blank=True)
    # Ours for an outgoing email (derived from the token, the same on every
    # attempt); the sender's for an incoming one.
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("written by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    due_at = models.DateTimeField(_("due at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("follow-up message")
        verbose_name_plural = _("follow-up messages")
        ordering = ["created_at", "pk"]
        constraints = [
            # A service posting the same email twice records it once.
            models.UniqueConstraint(
                fields=["message_id"],
                condition=~models.Q(message_id=""),
                name="followupmessage_message_id_once",
            ),
            models.CheckConstraint(
                condition=models.Q(direction="in") | models.Q(due_at__isnull=False),
                name="followupmessage_outgoing_has_due_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                condition=models.Q(direction="out", sent_at__isnull=True),
                name="followupmessage_unsent_due",
            ),
            models.Index(fields=["followup", "created_at"]),
        ]

    def __str__(self):
        return self.subject


class StartPage(models.TextChoices):
    """Where a staff member lands at `/`; blank: where their role does."""

    ROLE = "", _("Where my role starts (agents: my queue, managers: dashboard)")
    MY_QUEUE = "my-queue", _("My follow-ups")
    QUEUE = "queue", _("Follow-up queue")
    DASHBOARD = "dashboard", _("Dashboard")
    REPORTS = "reports", _("Reports")
    RESPONSES = "responses", _("Responses")
    JOURNEYS = "journeys", _("Journeys")
    OUTBOX = "outbox", _("Outbox")
    ADMIN = "admin", _("Admin")


class StaffProfile(models.Model):
    """
    What a CX staff member prefers: the language cxm speaks to them (pages and
    emails), the time zone times are shown in, and the page they land on.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="staff_profile",
        verbose_name=_("user"),
    )
    language = models.CharField(
        _("language"),
        max_length=10,
        choices=settings.LANGUAGES,
        blank=True,
        help_text=_(
            "The language of the staff pages, follow-up emails and the daily "
            "digest. Blank: the browser's language for pages, the site's for "
            "emails."
        ),
    )
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        blank=True,
        help_text=_("Times on the staff pages are shown in it. Blank: the site's."),
    )
    start_page = models.CharField(
        _("start page"),
        max_length=20,
        choices=StartPage.choices,
        blank=True,
        help_text=_("The page you land on after logging in."),
    )

    class Meta:
        verbose_name = _("staff preferences")
        verbose_name_plural = _("staff preferences")

    def __str__(self):
        return str(self.user)


class FollowUpDigest(models.Model):
    """
    One agent's daily digest for one day: the row is written in the transaction
    that sends it, and is unique, so a day's digest goes out once however many
    sweeps run.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="followup_digests",
        verbose_name=_("agent"),
    )
    day = models.DateField(_("day"))
    sent_at = models.DateTimeField(_("sent at"), default=timezone.now)
    followups = models.PositiveIntegerField(_("follow-ups listed"), default=0)

    class Meta:
        verbose_name = _("follow-up digest")
        verbose_name_plural = _("follow-up digests")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "day"], name="followupdigest_once_a_day"
            )
        ]

    def __str__(self):
        return f"{self.user} {self.day}"
