from django import forms
from django.utils.translation import gettext_lazy as _

from .models import ContactChannel, RootCause
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
