"""
The queue's filters: one FilterSet for the follow-ups page and the API list, so a
link and an API call with the same parameters list the same follow-ups in the same
order (selectors.followups_queue_order).
"""

import django_filters as filters
from django import forms
from django.core.validators import RegexValidator
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field

from cxm.customers.models import Segment
from cxm.customers.selectors import segment_customers
from surveys.models import Survey

from .forms import RootCauseField
from .models import FollowUpStatus, Priority, RootCause
from .selectors import (
    followup_owner_choices,
    followups_queue_order,
    teams_visible_to,
)

ID_OR_NONE = r"^(none|[0-9]{1,18})$"


@extend_schema_field(
    {
        "type": "string",
        "pattern": ID_OR_NONE,
        "description": 'A user id, or "none" for follow-ups nobody owns.',
    }
)
class OwnerFilter(filters.CharFilter):
    """A user id or "none"; the page offers the people who may own them."""

    def filter(self, qs, value):
        if value == "none":
            return qs.filter(owner__isnull=True)
        return qs.filter(owner_id=value) if value else qs


@extend_schema_field(
    {
        "type": "string",
        "pattern": ID_OR_NONE,
        "description": 'A team id, or "none" for follow-ups without a team.',
    }
)
class TeamFilter(filters.CharFilter):
    def filter(self, qs, value):
        if value == "none":
            return qs.filter(team__isnull=True)
        return qs.filter(team_id=value) if value else qs


class RootCauseFilter(filters.ModelChoiceFilter):
    field_class = RootCauseField  # named in the reader's language


ANY_STATUS = "any"


class FollowUpFilter(filters.FilterSet):
    # The first choice is the default: "unresolved" when status is not given.
    status = filters.ChoiceFilter(
        label=_("Status"),
        choices=[
            ("unresolved", _("Unresolved")),
            (ANY_STATUS, _("Any status")),
            *FollowUpStatus.choices,
        ],
        empty_label=None,
        method="filter_status",
        help_text='A status; "unresolved" (new, contacted and waiting: the '
        'default) or "any".',
    )
    overdue = filters.ChoiceFilter(
        label=_("Overdue"),
        choices=[("true", _("Overdue")), ("false", _("Not overdue"))],
        empty_label=_("Any"),
        method="filter_overdue",
        help_text="Only follow-ups past a due time (true) or not (false).",
    )
    priority = filters.ChoiceFilter(
        label=_("Priority"), choices=Priority.choices, empty_label=_("Any")
    )
    team = TeamFilter(
        label=_("Team"),
        validators=[RegexValidator(ID_OR_NONE, _('Give a team id or "none".'))],
    )
    owner = OwnerFilter(
        label=_("Owner"),
        validators=[RegexValidator(ID_OR_NONE, _('Give a user id or "none".'))],
    )
    root_cause = RootCauseFilter(
        label=_("Root cause"),
        queryset=RootCause.objects.all(),
        to_field_name="code",
        empty_label=_("Any"),
        help_text="The code of a root cause (GET /api/root-causes/).",
    )
    survey = filters.ModelChoiceFilter(
        label=_("Survey"),
        queryset=Survey.objects.order_by("name"),
        field_name="response__survey",
        empty_label=_("Any"),
        help_text="A survey id: follow-ups of answers to it.",
    )
    segment = filters.ModelChoiceFilter(
        label=_("Segment"),
        queryset=Segment.objects.order_by("name"),
        method="filter_segment",
        empty_label=_("Any"),
        help_text="A segment id: follow-ups of the customers in it now.",
    )
    search = filters.CharFilter(
        label=_("Customer"),
        max_length=200,
        method="filter_search",
        help_text="Part of the customer's name or email address.",
    )

    def __init__(self, data=None, *args, **kwargs):
        if data is not None and not data.get("status"):
            data = data.copy()
            data["status"] = "unresolved"  # the default, shown selected on the page
        super().__init__(data, *args, **kwargs)

    def filter_status(self, qs, name, value):
        if value == ANY_STATUS:
            return qs
        if value == "unresolved":
            return qs.unresolved()
        return qs.filter(status=value)

    def filter_overdue(self, qs, name, value):
        return qs.overdue() if value == "true" else qs.not_overdue()

    def filter_segment(self, qs, name, value):
        return qs.filter(customer__in=segment_customers(segment=value).values("pk"))

    def filter_search(self, qs, name, value):
        value = value.strip()
        if not value:
            return qs
        return qs.filter(
            Q(customer__email__icontains=value) | Q(customer__name__icontains=value)
        )

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        user = self.request.user if self.request else None
        return followups_queue_order(queryset, user=user)

    def offer_choices(self) -> None:
        """Lists the teams and people `owner` and `team` take, for the page."""
        user = self.request.user
        form = self.form
        form.fields["team"].widget = forms.Select(
            choices=[("", _("Any")), ("none", _("No team"))]
            + [(str(t.pk), t.name) for t in teams_visible_to(user)]
        )
        form.fields["owner"].widget = forms.Select(
            choices=[("", _("Anyone")), ("none", _("Nobody"))]
            + [(str(u.pk), u.get_username()) for u in followup_owner_choices(user)]
        )
