from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from .models import FollowUpStatus, RootCause
from .services import agents


class FilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Unresolved and resolved"))] + FollowUpStatus.choices,
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


class ResolveForm(forms.Form):
    root_cause = forms.ChoiceField(
        label=_("Root cause"), choices=[("", "—")] + RootCause.choices
    )
    resolution = forms.CharField(
        label=_("Resolution"),
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What was done for the customer."),
    )
