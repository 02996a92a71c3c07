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

from cxm.api import TEXT_PATTERN
from cxm.customers.models import Segment
from cxm.customers.selectors import segment_customers
from surveys.models import Survey

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


ID = r"^[0-9]{1,18}$"
CODE = r"^[-a-zA-Z0-9_]{1,40}$"


@extend_schema_field({"type": "string", "pattern": ID})
class IdFilter(filters.CharFilter):
    """A row's id; one that does not exist matches nothing (like owner and team)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validators", [RegexValidator(ID, _("Give an id."))])
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "pattern": CODE})
class CodeFilter(filters.CharFilter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("validators", [RegexValidator(CODE, _("Give a code."))])
        super().__init__(*args, **kwargs)


@extend_schema_field({"type": "string", "maxLength": 200, "pattern": TEXT_PATTERN})
class SearchFilter(filters.CharFilter):
    pass


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
    root_cause = CodeFilter(
        label=_("Root cause"),
        field_name="root_cause__code",
        help_text="The code of a root cause (GET /api/root-causes/).",
    )
    survey = IdFilter(
        label=_("Survey"),
        field_name="response__survey_id",
        help_text="A survey id: follow-ups of answers to it.",
    )
    segment = IdFilter(
        label=_("Segment"),
        method="filter_segment",
        help_text="A segment id: follow-ups of the customers in it now.",
    )
    search = SearchFilter(
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
        segment = Segment.objects.filter(pk=value).first()
        if segment is None:
            return qs.none()
        return qs.filter(customer__in=segment_customers(segment=segment).values("pk"))

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
        """Lists what the id and code filters take, as the page's menus."""
        user = self.request.user
        form = self.form
        any_ = [("", _("Any"))]
        form.fields["root_cause"].widget = forms.Select(
            choices=any_ + [(c.code, c.name) for c in RootCause.objects.all()]
        )
        form.fields["survey"].widget = forms.Select(
            choices=any_
            + [(str(pk), name) for pk, name in Survey.objects.values_list("pk", "name")]
        )
        form.fields["segment"].widget = forms.Select(
            choices=any_
            + [
                (str(pk), name)
                for pk, name in Segment.objects.order_by("name").values_list(
                    "pk", "name"
                )
            ]
        )
        form.fields["team"].widget = forms.Select(
            choices=[("", _("Any")), ("none", _("No team"))]
            + [(str(t.pk), t.name) for t in teams_visible_to(user)]
        )
        form.fields["owner"].widget = forms.Select(
            choices=[("", _("Anyone")), ("none", _("Nobody"))]
            + [(str(u.pk), u.get_username()) for u in followup_owner_choices(user)]
        )
