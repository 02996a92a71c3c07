"""
The responses' filters: one FilterSet for the responses page, the API list and the
CSV export, so a link, an API call and an export with the same parameters hold the
same responses in the same order (newest first).
"""

import re
from datetime import datetime, time, timedelta

import django_filters as filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions

from cxm.api import (
    DATE_TIME_PATTERN,
    EDGE_DAYS,
    RFC_3339,
    TEXT_PATTERN,
    FilterSet,
    IsoDateTimeFormField,
    ReferenceFilter,
)
from cxm.customers.models import Segment
from cxm.customers.selectors import segment_customers

from .kinds import KINDS, Bucket, SurveyKind
from .models import Campaign, Response, Survey
from .themes import TERM_MAX, term_q

# At most this many campaigns in one query: each is an id in the SQL.
CAMPAIGNS_MAX = 100
DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


class CampaignsField(forms.Field):
    """
    Campaign ids, repeated (?campaign=1&campaign=2): a 400 unless each is a whole
    number, a 404 naming the first that is no campaign.
    """

    widget = forms.SelectMultiple

    def to_python(self, value):
        if value in self.empty_values:
            return []
        values = [value] if isinstance(value, str) else list(value)
        if len(values) > CAMPAIGNS_MAX:
            raise ValidationError(
                _("Choose at most %(limit)d campaigns."),
                params={"limit": CAMPAIGNS_MAX},
            )
        for value in values:
            if not isinstance(value, str) or not re.fullmatch(
                r"-?[0-9]+", value, re.ASCII
            ):
                raise ValidationError(
                    _("There is no campaign %(value)s."),
                    code="invalid_choice",
                    params={"value": value},
                )
        ids = {int(v) for v in values}
        found = set(Campaign.objects.filter(pk__in=ids).values_list("pk", flat=True))
        for value in values:
            if int(value) not in found:
                raise exceptions.NotFound(
                    _("There is no campaign %(value)s.") % {"value": value}
                )
        return sorted(found)


@extend_schema_field(
    {
        "type": "array",
        "items": {"type": "integer"},
        "description": "Campaign ids; repeat the parameter for several.",
    }
)
class CampaignsFilter(filters.Filter):
    field_class = CampaignsField

    def filter(self, qs, value):
        return qs.filter(campaign__in=value) if value else qs


class DayOrTimeField(forms.Field):
    """A day (2024-05-01) or an RFC 3339 date and time; returns (value, is_day)."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, str) and DAY.fullmatch(value):
            try:
                day = datetime.strptime(value, "%Y-%m-%d").date()
            except ValueError:
                raise ValidationError(_("This date does not exist."), code="invalid")
            if day in EDGE_DAYS:
                raise ValidationError(_("This date is out of range."), code="invalid")
            return day, True
        if isinstance(value, str) and RFC_3339.fullmatch(value):
            return IsoDateTimeFormField().to_python(value), False
        raise ValidationError(
            _("Give a day such as 2024-05-01, or a time such as 2024-05-01T09:30Z."),
            code="invalid",
        )


DAY_OR_TIME = {
    "anyOf": [
        {"type": "string", "format": "date", "pattern": DATE_TIME_PATTERN},
        {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN},
    ]
}


def _day_start(day) -> datetime:
    """The first moment of a day in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


@extend_schema_field(
    {**DAY_OR_TIME, "description": "Answered on or after this day (or time)."}
)
class SinceFilter(filters.Filter):
    field_class = DayOrTimeField

    def filter(self, qs, value):
        if value is None:
            return qs
        moment, is_day = value
        return qs.filter(created_at__gte=_day_start(moment) if is_day else moment)


@extend_schema_field(
    {
        **DAY_OR_TIME,
        "description": "Answered on or before this day (or before this time).",
    }
)
class UntilFilter(filters.Filter):
    field_class = DayOrTimeField

    def filter(self, qs, value):
        if value is None:
            return qs
        moment, is_day = value
        if is_day:
            return qs.filter(created_at__lt=_day_start(moment + timedelta(days=1)))
        return qs.filter(created_at__lt=moment)


@extend_schema_field({"type": "string", "maxLength": TERM_MAX, "pattern": TEXT_PATTERN})
class TermFilter(filters.CharFilter):
    pass


@extend_schema_field({"type": "integer"})
class SegmentFilter(ReferenceFilter):
    pass


def bucket_q(bucket: str) -> Q:
    """Returns the condition "the headline score falls in `bucket`", for every kind
    that has it (neutral is a CSAT 3 and a CES 4)."""
    condition = Q(pk__in=[])
    for kind, spec in KINDS.items():
        for scores in spec.buckets:
            if scores.bucket == bucket:
                condition |= Q(
                    survey__kind=kind, score__gte=scores.low, score__lte=scores.high
                )
    return condition


class ResponseFilter(FilterSet):
    campaign = CampaignsFilter(label=_("Campaign"))
    kind = filters.ChoiceFilter(
        label=_("Kind"),
        field_name="survey__kind",
        choices=SurveyKind.choices,
        empty_label=_("Any"),
        help_text="The survey's kind.",
    )
    bucket = filters.ChoiceFilter(
        label=_("Bucket"),
        choices=Bucket.choices,
        empty_label=_("Any"),
        method="filter_bucket",
        help_text="Where the headline score falls: detractor, promoter, hard …",
    )
    since = SinceFilter(label=_("Since"))
    until = UntilFilter(label=_("Until"))
    segment = SegmentFilter(
        label=_("Segment"),
        queryset=Segment.objects.all(),
        method="filter_segment",
        help_text="A segment id: responses of the customers in it now.",
    )
    term = TermFilter(
        label=_("Comment mentions"),
        max_length=TERM_MAX,
        method="filter_term",
        help_text="A theme's term: the comment has each of its words (English "
        "words by their stem: ship finds shipped and shipping).",
    )

    class Meta:
        model = Response
        fields = ["campaign", "survey", "customer"]

    def filter_bucket(self, qs, name, value):
        return qs.filter(bucket_q(value))

    def filter_segment(self, qs, name, value):
        return qs.filter(customer__in=segment_customers(segment=value).values("pk"))

    def filter_term(self, qs, name, value):
        return qs.filter(term_q(value)) if value.strip() else qs

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset).order_by("-created_at", "-id")

    def offer_choices(self) -> None:
        """Lists what the id filters take, as the page's menus."""
        form = self.form
        any_ = [("", _("Any"))]
        form.fields["campaign"].widget = forms.SelectMultiple(
            choices=Campaign.objects.order_by("-created_at", "-pk").values_list(
                "pk", "name"
            ),
        )
        form.fields["survey"].widget = forms.Select(
            choices=any_
            + [(str(pk), name) for pk, name in Survey.objects.values_list("pk", "name")]
        )
        form.fields["segment"].widget = forms.Select(
            choices=any_
            + list(Segment.objects.order_by("name").values_list("pk", "name"))
        )
        form.fields["customer"].widget = forms.HiddenInput()
        form.fields["since"].widget = forms.DateInput(attrs={"type": "date"})
        form.fields["until"].widget = forms.DateInput(attrs={"type": "date"})
