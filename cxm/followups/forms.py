import re

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from .models import ContactChannel, RootCause, Team
from .preferences import start_pages_for, time_zone_names
from .selectors import report_teams_for
from .services import root_cause_choices


class IdListField(forms.Field):
    """A list of row ids, as checkboxes send them: name=1&name=2."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": _("%(value)s is not a follow-up number.")}

    def to_python(self, value):
        if not value:
            return []
        ids = []
        for item in value if isinstance(value, list | tuple) else [value]:
            if not (isinstance(item, str) and item.isascii() and item.isdigit()):
                raise forms.ValidationError(
                    self.error_messages["invalid"],
                    code="invalid",
                    params={"value": str(item)[:20]},
                )
            if len(item) > 18:
                raise forms.ValidationError(
                    self.error_messages["invalid"],
                    code="invalid",
                    params={"value": item[:20]},
                )
            ids.append(int(item))
        return ids


class BulkAssignForm(forms.Form):
    """The queue's bulk reassign: the chosen follow-ups' ids and their new owner."""

    followup = IdListField(
        label=_("Follow-ups"),
        error_messages={"required": _("Choose the follow-ups to reassign.")},
    )
    owner = forms.ModelChoiceField(
        label=_("Give to"),
        queryset=None,
        empty_label="—",
        error_messages={
            "required": _("Choose who gets the follow-ups."),
            "invalid_choice": _("Choose who gets the follow-ups from the list."),
        },
    )

    def __init__(self, *args, owners, **kwargs):
        # Its own ids: the queue's filters have an owner field too.
        kwargs.setdefault("auto_id", "id_bulk_%s")
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owners
        self.fields["owner"].label_from_instance = lambda u: u.get_username()

    def clean_followup(self):
        ids = self.cleaned_data["followup"]
        if len(ids) > 200:
            raise forms.ValidationError(_("Reassign at most 200 follow-ups at once."))
        return list(dict.fromkeys(ids))


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


class ReplyForm(forms.Form):
    """The reply email to the customer, prefilled (replies.followup_reply_draft)."""

    subject = forms.CharField(
        label=_("Subject"),
        max_length=255,
        widget=forms.TextInput(attrs={"size": 60}),
    )
    body = forms.CharField(
        label=_("Message"), max_length=20000, widget=forms.Textarea(attrs={"rows": 14})
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


class PreferencesForm(forms.Form):
    """A staff member's preferences page: language, time zone, start page."""

    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)
    start_page = forms.ChoiceField(label=_("Start page"), required=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [
            ("", _("The browser's language")),
            *settings.LANGUAGES,
        ]
        self.fields["time_zone"].choices = [
            ("", _("The site's time zone (%(zone)s)") % {"zone": settings.TIME_ZONE}),
            *((name, name) for name in time_zone_names()),
        ]
        self.fields["start_page"].choices = start_pages_for(user)
