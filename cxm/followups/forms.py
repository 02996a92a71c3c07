import re

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .models import ContactChannel, FollowUpStatus, RootCause, Team
from .selectors import report_teams_for
from .services import agents, root_cause_choices


class FilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), ("unresolved", _("Unresolved"))]
        + FollowUpStatus.choices,
    )
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    overdue = forms.ChoiceField(
        label=_("Overdue"),
        required=False,
        choices=[("", _("Any")), ("yes", _("Overdue")), ("no", _("Not overdue"))],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        User = get_user_model()
        people = User.objects.filter(followups__isnull=False).union(agents())
        self.fields["owner"].choices = [("", _("Anyone")), ("none", _("Nobody"))] + [
            (str(u.pk), u.get_username()) for u in people.order_by("username")
        ]


class NoteForm(forms.Form):
    text = forms.CharField(
        label=_("Note"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3})
    )


class RootCauseField(forms.ModelChoiceField):
    def label_from_instance(self, obj: RootCause) -> str:
        return obj.name


class ResolveForm(forms.Form):
    root_cause = RootCauseField(
        label=_("Root cause"),
        queryset=RootCause.objects.none(),
        empty_label="—",
        to_field_name="code",
    )
    resolution = forms.CharField(
        label=_("Resolution"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What was done for the customer."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["root_cause"].queryset = root_cause_choices()


class ContactForm(forms.Form):
    channel = forms.ChoiceField(
        label=_("How"), choices=ContactChannel.choices, initial=ContactChannel.PHONE
    )
    note = forms.CharField(
        label=_("What was said"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class StatusNoteForm(forms.Form):
    """The optional note that goes with a move: waiting, close, reopen."""

    note = forms.CharField(
        label=_("Note"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class TeamChoiceField(forms.ModelChoiceField):
    """
    A team by id: "not a number" is a bad request; a number that names none of the
    user's teams is "not found" (the API's 404), saying nothing of others' teams.
    """

    def to_python(self, value):
        if value in self.empty_values:
            return None
        value = str(value).strip()
        if not re.fullmatch(r"-?[0-9]+", value):
            raise forms.ValidationError(_("Give a team's id."), code="invalid")
        try:
            return self.queryset.get(pk=int(value))
        except self.queryset.model.DoesNotExist:
            raise forms.ValidationError(
                _("None of your teams has this id."), code="not_found"
            ) from None


class ReportFilterForm(forms.Form):
    """
    The reports' filters, for the page and the API alike: the period of opening
    (dates, both included) and a team among those the user may see.
    """

    since = forms.DateField(
        label=_("Opened from"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    until = forms.DateField(
        label=_("Opened until"),
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    team = TeamChoiceField(
        label=_("Team"),
        queryset=Team.objects.none(),
        required=False,
        empty_label=_("All teams"),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = report_teams_for(user)

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise forms.ValidationError(
                _("The period must start on or before its last day."),
                code="period",
            )
        return data
