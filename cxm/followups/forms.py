from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .models import ContactChannel, FollowUpStatus, RootCause
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
