"""The journey map's filters: one form for the page and the API."""

import datetime as dt

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cxm.customers.models import Segment

from .models import Channel

# The period a map shows when none is asked for, and the longest it shows.
DEFAULT_DAYS = 90
MAX_DAYS = 3660


class SegmentField(forms.ModelChoiceField):
    """A segment by id; an id no bigint holds is refused before the database sees it."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if not str(value).isdigit() or int(value) > 2**63 - 1:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(value)


class JourneyMapFilterForm(forms.Form):
    since = forms.DateField(
        label=pgettext_lazy("period", "From"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("YYYY-MM-DD; 90 days before the end unless given."),
    )
    until = forms.DateField(
        label=pgettext_lazy("period", "To"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("YYYY-MM-DD, included; today unless given."),
    )
    segment = SegmentField(
        label=_("Segment"),
        queryset=Segment.objects.all(),
        required=False,
        empty_label=_("All customers"),
        error_messages={"invalid_choice": _("There is no such segment.")},
    )
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[("", _("All channels")), *Channel.choices],
        required=False,
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        until = data.get("until") or timezone.localdate()
        since = data.get("since") or until - dt.timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise forms.ValidationError(
                _("The period's start is after its end."), code="bad_period"
            )
        if (until - since).days >= MAX_DAYS:
            raise forms.ValidationError(
                _("Choose a period of at most %(days)d days.") % {"days": MAX_DAYS},
                code="bad_period",
            )
        data["since"], data["until"] = since, until
        data["channel"] = data.get("channel") or None
        return data

    def errors_text(self) -> str:
        """Every error of the form in one sentence per field, for an API's 400."""
        return " ".join(
            f"{'' if field == '__all__' else field + ': '}{' '.join(messages)}"
            for field, messages in self.errors.items()
        )
