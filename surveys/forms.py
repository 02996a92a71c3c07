from django import forms
from django.utils.translation import gettext_lazy as _


class AnswerForm(forms.Form):
    score = forms.TypedChoiceField(
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={
            "required": _("Please choose a score."),
            "invalid_choice": _("Please choose one of the scores shown."),
        },
    )
    comment = forms.CharField(
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )

    def __init__(self, *args, score_range: tuple[int, int], **kwargs):
        super().__init__(*args, **kwargs)
        low, high = score_range
        self.fields["score"].choices = [(n, str(n)) for n in range(low, high + 1)]
