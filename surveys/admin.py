"""
The surveys admin: the survey builder (questions inline, a preview of the answer
page in each language, ready templates, copies), campaigns with their headline
metric, and the history of invitations and responses, read-only.

Every write calls a service; a form only checks what the service would refuse, so
the refusal shows on the form rather than as an error page.
"""

from urllib.parse import urlencode

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp, csp_update
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import construct_change_message, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, capfirst, slugify
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from cxm.admin_site import LargeListMixin, ServiceDeleteMixin
from cxm.customers.admin import customer_link
from cxm.customers.models import Segment
from cxm.outbox.views import EMAIL_SANDBOX, HEAD
from cxm.paginators import EstimatedCountPaginator

from . import metrics
from .exports import export_response
from .kinds import KINDS, Bucket, SurveyKind, bucket_q
from .models import (
    CHOICE_VALUE,
    SCHEDULE_FIELDS,
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    Question,
    QuestionRole,
    QuestionType,
    Response,
    ScheduleKind,
    SkipReason,
    Survey,
)
from .selectors import campaign_audience_preview
from .services import (
    CAMPAIGN_FIELDS,
    QUESTION_FIELDS,
    SURVEY_TEMPLATES,
    campaign_create,
    campaign_delete,
    campaign_pause,
    campaign_resume,
    campaign_send,
    campaign_stop,
    campaign_update,
    invitation_preview,
    survey_copy,
    survey_create,
    survey_delete,
    survey_from_template,
    survey_questions_check,
    survey_questions_planned,
    survey_update,
)
from .views import Field


def _choice_line(choice: dict) -> str:
    return " | ".join([choice["value"], choice["en"], choice.get("ko", "")]).rstrip()


class ChoicesField(forms.CharField):
    """
    A choice question's options as staff type them, one a line:
    `value | English label | Korean label`, or `value | English label`. A new line
    may leave the value out (`| English | Korean`, or only the English label): it is
    made from the English label. Cleans to the list Question.choices holds.
    """

    widget = forms.Textarea(attrs={"rows": 4, "cols": 70})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(_choice_line(choice) for choice in value)
        return value

    def to_python(self, value):
        if isinstance(value, list):  # the initial value, of a disabled field
            return value
        lines, errors = [], []
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split("|")]
            if len(parts) > 3:
                errors.append(
                    _(
                        "Line %(line)d: write value | English label | Korean label, "
                        "with no other “|”."
                    )
                    % {"line": number}
                )
                continue
            # One part: the English label; two: value and English; three: all.
            key, english, korean = (
                ["", parts[0], ""] if len(parts) == 1 else [*parts, ""][:3]
            )
            if not english:
                errors.append(
                    _("Line %(line)d: give the English label.") % {"line": number}
                )
            elif key and not CHOICE_VALUE.fullmatch(key):
                errors.append(
                    _(
                        "Line %(line)d: “%(value)s” is not a value: use lower-case "
                        "letters, digits, - and _, up to 50."
                    )
                    % {"line": number, "value": key}
                )
            else:
                lines.append((number, {"value": key, "en": english, "ko": korean}))
        # Values given first, so that none made from a label takes one of theirs.
        taken = {choice["value"] for _number, choice in lines if choice["value"]}
        for number, choice in lines:
            if choice["value"]:
                continue
            base = slugify(choice["en"])[:50].strip("-_")
            if not base:
                errors.append(
                    _(
                        "Line %(line)d: no value can be made from “%(label)s”; "
                        "write one first: value | English label | Korean label."
                    )
                    % {"line": number, "label": choice["en"]}
                )
                continue
            key, n = base, 2
            while key in taken:
                suffix = f"-{n}"
                key, n = base[: 50 - len(suffix)] + suffix, n + 1
            choice["value"] = key
            taken.add(key)
        seen = set()
        for number, choice in lines:
            if choice["en"].casefold() in seen:
                errors.append(
                    _("Line %(line)d: “%(label)s” is there twice.")
                    % {"line": number, "label": choice["en"]}
                )
            seen.add(choice["en"].casefold())
        if errors:
            raise ValidationError(errors)
        return [choice for _number, choice in lines]


class QuestionForm(forms.ModelForm):
    position = forms.IntegerField(
        label=capfirst(Question._meta.get_field("position").verbose_name),
        required=False,
        min_value=0,
        max_value=32767,
        help_text=_("Lower first. Empty: after the others."),
    )
    choices = ChoicesField(
        label=capfirst(Question._meta.get_field("choices").verbose_name),
        help_text=_(
            "One choice a line: value | English label | Korean label (the Korean "
            "label may be left out). A new line may leave out the value, "
            "“| English | Korean” or the English label alone, and gets one made "
            "from the English label. Once answered, a choice keeps its value."
        ),
    )

    class Meta:
        model = Question
        fields = ["position", *QUESTION_FIELDS]
        # Wide enough to read a whole question while rewording it.
        widgets = {
            name: forms.TextInput(attrs={"size": 90}) for name in ("text_en", "text_ko")
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        role = self.instance.role if self.instance.pk else QuestionRole.EXTRA
        if role:
            # A standard question keeps its type, the score its kind's scale; the
            # service would refuse a change, so the form offers none.
            fixed = ["type", "scale_low", "scale_high", "choices"]
            if role == QuestionRole.HEADLINE:
                fixed.append("required")
            else:
                fixed += [name for name in self.fields if name.startswith("label_")]
            for name in fixed:
                if name in self.fields:
                    self.fields[name].disabled = True

    def _post_clean(self):
        # The model's own checks stop here: the formset's clean() asks the service,
        # which checks the same and names the field, and nothing is saved from the
        # form (on the unique position, a reordering would clash with the rows
        # as they are).
        pass

    def spec(self) -> dict:
        """The question as survey_create and survey_update take it."""
        spec = {
            name: self.cleaned_data.get(name)
            for name in QUESTION_FIELDS
            if name in self.fields
        }
        if self.instance.pk:
            spec["id"] = self.instance.pk
        return spec


class QuestionFormSet(forms.BaseInlineFormSet):
    """
    Checks the survey's new list of questions with the service's rules
    (survey_questions_check) and puts each refusal on the question it is about.
    """

    specs: list[dict] | None = None

    def question_forms(self) -> list[QuestionForm]:
        """The forms of the questions to keep, by position (empty last), then as
        listed; blank new forms left out."""
        kept = [
            form
            for form in self.forms
            if (form.instance.pk or form.has_changed())
            and not form.cleaned_data.get("DELETE")
        ]
        return sorted(
            kept,
            key=lambda form: (
                form.cleaned_data.get("position") is None,
                form.cleaned_data.get("position") or 0,
            ),
        )

    def clean(self):
        if any(self.errors):
            return
        forms_ = self.question_forms()
        specs = [form.spec() for form in forms_]
        survey = self.instance if self.instance.pk else None
        kind = self.instance.kind
        # A new survey also gets its kind's standard questions.
        planned = (
            specs if survey else survey_questions_planned(kind=kind, questions=specs)
        )
        try:
            survey_questions_check(survey=survey, kind=kind, questions=planned)
        except ValidationError as e:
            per_question = getattr(e, "per_question", None)
            if per_question is None:
                raise ValidationError(e.messages)
            form_of = {id(spec): form for spec, form in zip(specs, forms_, strict=True)}
            elsewhere = []
            for spec, errors in zip(planned, per_question, strict=True):
                form = form_of.get(id(spec))
                for name, field_messages in errors.items():
                    if form is None:
                        elsewhere += field_messages
                        continue
                    for message in field_messages:
                        form.add_error(name if name in form.fields else None, message)
            if elsewhere:
                raise ValidationError(elsewhere)
            return
        self.specs = specs


class QuestionInline(admin.StackedInline):
    model = Question
    form = QuestionForm
    formset = QuestionFormSet
    extra = 0
    readonly_fields = ["role"]
    fieldsets = [
        (None, {"fields": [("position", "type", "required"), "role"]}),
        (_("Wording"), {"fields": ["text_en", "text_ko"]}),
        (
            _("Scale of a score question"),
            {
                "fields": [
                    ("scale_low", "scale_high"),
                    ("label_low_en", "label_high_en"),
                    ("label_low_ko", "label_high_ko"),
                ],
                "description": _(
                    "The score of an NPS, CSAT or CES survey has its kind's scale; "
                    "an extra score question runs from 0 to 10 at most."
                ),
            },
        ),
        (_("Choices of a choice question"), {"fields": ["choices"]}),
    ]

    def get_queryset(self, request):
        # A question's title names it in its survey's words (display_text).
        return super().get_queryset(request).select_related("survey")


class _Refused(Exception):
    """The service refused what the form had checked (answers arrived meanwhile)."""

    def __init__(self, error: ValidationError):
        super().__init__(error)
        self.error = error


class TemplateStartForm(forms.Form):
    template = forms.ChoiceField(choices=[(key, key) for key in SURVEY_TEMPLATES])
    name = forms.CharField(
        label=_("name"),
        max_length=Survey._meta.get_field("name").max_length,
        required=False,
    )


@admin.register(Survey)
class SurveyAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    list_display = ["name", "kind", "question_count", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]
    inlines = [QuestionInline]
    actions = ["copy"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(question_count=Count("questions"))

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        # A survey with campaigns is history (and protected by them).
        if obj is not None and obj.campaigns.exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_service(self, obj):
        survey_delete(survey=obj)

    def get_fields(self, request, obj=None):
        return ["name", "kind"] if obj is None else ["name", "kind", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        # The kind is chosen once: the headline's scale and every metric follow it.
        return [] if obj is None else ["kind", "created_at"]

    @admin.display(description=_("questions"), ordering="question_count")
    def question_count(self, obj):
        return obj.question_count

    def save_model(self, request, obj, form, change):
        # Nothing yet: save_related writes the survey with its questions, in one
        # service call.
        pass

    def save_related(self, request, form, formsets, change):
        questions = next(
            (fs for fs in formsets if isinstance(fs, QuestionFormSet)), None
        )
        specs = questions.specs if questions is not None else None
        survey = form.instance
        try:
            if change:
                survey_update(
                    survey=survey,
                    name=survey.name,
                    questions=specs if questions and questions.has_changed() else None,
                )
            else:
                created = survey_create(
                    name=survey.name, kind=survey.kind, questions=specs
                )
                # The admin goes on with the object its form built: make it this one.
                survey.pk, survey.created_at = created.pk, created.created_at
                survey._state.adding = False
                survey._state.db = created._state.db
        except ValidationError as e:
            raise _Refused(e)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            # Rolled back with the admin's transaction; the form checked the same
            # rules a moment before, so this is a change that came in between.
            self.message_user(request, " ".join(refused.error.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def construct_change_message(self, request, form, formsets, add=False):
        message = construct_change_message(form, [], add)
        if not add and any(formset.has_changed() for formset in formsets):
            with translation.override(None):
                message.append(
                    {"changed": {"fields": [str(Question._meta.verbose_name_plural)]}}
                )
        return message

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "templates/",
                self.admin_site.admin_view(self.templates_view),
                name=f"{prefix}_templates",
            ),
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name=f"{prefix}_preview",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "preview_links": self._preview_links(object_id),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def _preview_links(self, object_id, current: str = "") -> list[dict]:
        url = reverse("admin:surveys_survey_preview", args=[object_id])
        return [
            {
                "language": code,
                "url": f"{url}?language={code}",
                "label": gettext("Preview in %(language)s") % {"language": name},
                "current": code == current,
            }
            for code, name in settings.LANGUAGES
        ]

    def preview_view(self, request, object_id):
        """
        The answer page as a customer in `?language=` sees it, every question on
        one page, from the customers' own templates. Its form posts back here,
        which records nothing.
        """
        survey = self.get_object(request, unquote(object_id))
        if survey is None:
            raise Http404
        if not self.has_view_permission(request, survey):
            raise PermissionDenied
        languages = dict(settings.LANGUAGES)
        language = request.GET.get("language", "")
        if language not in languages:
            language = settings.LANGUAGE_CODE
        questions = list(survey.questions.all())
        # In the staff's language, before the page switches to the customer's.
        preview = {
            "language": translation.get_language(),
            "note": gettext(
                "Preview of “%(survey)s” as a customer reading %(language)s sees it. "
                "Customers answer the score alone first, then the rest; nothing "
                "sent from this page is recorded."
            )
            % {"survey": survey, "language": languages[language]},
            "sent": request.method == "POST",
            "sent_note": gettext("Nothing was recorded: this is a preview."),
            "links": self._preview_links(survey.pk, current=language),
            "back_url": reverse("admin:surveys_survey_change", args=[survey.pk]),
            "back": gettext("Back to the survey"),
        }
        with translation.override(language):
            response = render(
                request,
                "admin/surveys/survey/preview.html",
                {
                    "survey": survey,
                    "fields": [Field(question) for question in questions],
                    "page_errors": [],
                    "step": 1,
                    "one_tap": False,
                    "answered_before": None,
                    "language": language,
                    "preview": preview,
                },
            )
        response["Content-Language"] = language
        return response

    def templates_view(self, request):
        """The ready surveys to start from; POST creates one and opens it."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TemplateStartForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                survey = survey_from_template(
                    template=form.cleaned_data["template"],
                    name=form.cleaned_data["name"],
                )
            except ValidationError as e:
                form.add_error(None, e.messages)
            else:
                self.log_addition(request, survey, [{"added": {}}])
                self.message_user(
                    request,
                    gettext(
                        "The survey “%(name)s” was created from the template: reword "
                        "its questions or add some below."
                    )
                    % {"name": survey.name},
                    messages.SUCCESS,
                )
                return redirect("admin:surveys_survey_change", survey.pk)
        templates = []
        for key, (title, kind, text_en, text_ko) in SURVEY_TEMPLATES.items():
            # Unsaved, to read the wording as the survey will show it.
            headline = Question(
                survey=Survey(kind=kind),
                type=QuestionType.SCORE,
                role=QuestionRole.HEADLINE,
                text_en=text_en,
                text_ko=text_ko,
            )
            reason = Question(
                survey=headline.survey,
                type=QuestionType.LONG_TEXT,
                role=QuestionRole.REASON,
            )
            low, high = headline.scale
            templates.append(
                {
                    "key": key,
                    "title": title,
                    "kind": SurveyKind(kind).label,
                    "questions": [
                        f"{headline.display_text()} ({low}–{high})",
                        reason.display_text(),
                    ],
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Start from a template"),
            "templates": templates,
            "form": form,
        }
        return TemplateResponse(request, "admin/surveys/survey/templates.html", context)

    @admin.action(description=_("Copy the selected surveys"), permissions=["add"])
    def copy(self, request, queryset):
        copies = []
        for survey in queryset.prefetch_related("questions"):
            copy = survey_copy(survey=survey)
            self.log_addition(request, copy, [{"added": {}}])
            copies.append(copy)
        self.message_user(
            request,
            ngettext(
                "%(count)d survey copied: %(names)s.",
                "%(count)d surveys copied: %(names)s.",
                len(copies),
            )
            % {"count": len(copies), "names": ", ".join(c.name for c in copies)},
            messages.SUCCESS,
        )


def _bucket_counts(result: metrics.Metric) -> tuple[int, int, int]:
    """A metric's counts of negative, neutral and positive answers."""
    if isinstance(result, metrics.Nps):
        return result.detractors, result.passives, result.promoters
    if isinstance(result, metrics.Csat):
        return result.dissatisfied, result.neutral, result.satisfied
    return result.hard, result.neutral, result.easy


def _scores(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}–{high}"


# How each kind's figure reads: NPS points, CSAT a percentage, CES a mean.
METRIC_FIGURES = {
    SurveyKind.NPS: _("NPS %(score)s"),
    SurveyKind.CSAT: _("CSAT %(score)s %%"),
    SurveyKind.CES: _("CES %(score)s"),
}


def _metric_headline(kind: str, result: metrics.Metric) -> str:
    """The figure with its margin of error and the count behind it."""
    if result.score is None:
        return gettext("No responses yet.")
    figure = METRIC_FIGURES[kind] % {"score": result.score}
    if result.margin_of_error is not None:
        figure = f"{figure} ± {result.margin_of_error}"
    return ngettext(
        "%(figure)s from %(count)d response",
        "%(figure)s from %(count)d responses",
        result.responses,
    ) % {"figure": figure, "count": result.responses}


# The reasons a customer of the audience is left out (the audience preview's).
AUDIENCE_REASONS = {
    "unsubscribed": _("unsubscribed"),
    "bounced": _("bounced"),
    "complained": _("reported our email as spam"),
    "already_invited": _("invited by this campaign before"),
    "recently_contacted": _("recently contacted"),
}

# The email's own policy, in place of the site's (as the outbox's email frame):
# its inline styles, its images, no script, sandboxed even when opened alone.
EMAIL_CSP = csp(
    {
        "default-src": [NONE],
        "style-src": [UNSAFE_INLINE],
        "img-src": [SELF, "https:", "data:"],
        "frame-ancestors": [SELF],
        "form-action": [NONE],
        "sandbox": EMAIL_SANDBOX,
    }
)


def audience_summary(preview: dict) -> dict:
    """Returns the audience preview in words: a sentence, and who is left out by
    reason (reasons that leave out nobody left out)."""
    return {
        "text": gettext(
            "%(audience)d in the audience now; sending would invite %(invited)d."
        )
        % preview,
        "excluded": [
            {
                "reason": reason,
                "label": str(AUDIENCE_REASONS.get(reason, reason)),
                "count": count,
            }
            for reason, count in preview["excluded"].items()
            if count
        ],
    }


def send_label(campaign: Campaign) -> str:
    """ "Send" for a campaign that goes out when sent, else "Schedule"."""
    if campaign.schedule in ("", ScheduleKind.NOW):
        return gettext("Send…")
    return gettext("Schedule…")


def send_button(campaign: Campaign, invited: int) -> str:
    if campaign.schedule in ("", ScheduleKind.NOW):
        return ngettext(
            "Send to %(count)d customer", "Send to %(count)d customers", invited
        ) % {"count": invited}
    if campaign.schedule == ScheduleKind.TRIGGERED:
        return gettext("Start the campaign")
    return ngettext(
        "Schedule for %(count)d customer", "Schedule for %(count)d customers", invited
    ) % {"count": invited}


WEEKDAYS = [
    (1, _("Monday")),
    (2, _("Tuesday")),
    (3, _("Wednesday")),
    (4, _("Thursday")),
    (5, _("Friday")),
    (6, _("Saturday")),
    (7, _("Sunday")),
]


class CampaignForm(forms.ModelForm):
    # Not required: a form without it (an older page) sends now.
    schedule = forms.ChoiceField(
        label=capfirst(_("schedule")),
        choices=ScheduleKind.choices,
        required=False,
        initial=ScheduleKind.NOW,
    )
    window_weekdays = forms.TypedMultipleChoiceField(
        label=capfirst(_("window weekdays")),
        choices=WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Spread: the weekdays to send on. None ticked: every day."),
    )

    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The admin's date and time boxes have one <label> for the pair; screen
        # readers need a name for each box.
        for name in ("expires_at", "starts_at"):
            field = self.fields.get(name)
            parts = getattr(field and field.widget, "widgets", None)
            if parts:
                label = field.label
                parts[0].attrs["aria-label"] = _("%(field)s: date") % {"field": label}
                parts[1].attrs["aria-label"] = _("%(field)s: time") % {"field": label}

    def clean_schedule(self):
        return self.cleaned_data["schedule"] or ScheduleKind.NOW


@admin.register(Campaign)
class CampaignAdmin(ServiceDeleteMixin, admin.ModelAdmin):
    form = CampaignForm
    # Every column in view on a 1280 px screen: the survey's kind is the
    # headline metric's name (NPS, CSAT, CES), not a column of its own.
    list_display = [
        "name",
        "survey",
        "schedule",
        "status",
        "sent_at",
        "invited",
        "responded",
        "metric",
    ]
    list_filter = ["status", "survey"]
    search_fields = ["name"]
    readonly_fields = [
        "status",
        "sent_at",
        "created_at",
        "audience_preview",
        "invitation_summary",
        "metric_summary",
        "wave",
        "next_wave_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "survey", "segment", "status", "audience_preview"]}),
        (
            _("Schedule"),
            {
                "fields": [*SCHEDULE_FIELDS, "wave", "next_wave_at"],
                "description": _(
                    "Now: when sent. At a time: at “starts at”. Spread: over the "
                    "window days from “starts at”, on the weekdays and hours given, "
                    "in each customer's time zone. After an interaction: the delay "
                    "after each interaction of the kind given. Recurring: the "
                    "audience again every N days. Only the fields of the chosen "
                    "schedule count."
                ),
            },
        ),
        (
            _("Emails"),
            {"fields": ["subject_en", "intro_en", "subject_ko", "intro_ko"]},
        ),
        (
            _("Rules"),
            {
                "fields": [
                    "contact_frequency_days",
                    "reminders",
                    "reminder_interval_days",
                    "expires_after_days",
                    "expires_at",
                ]
            },
        ),
        (
            _("Results"),
            {
                "fields": [
                    "created_at",
                    "sent_at",
                    "invitation_summary",
                    "metric_summary",
                ]
            },
        ),
    ]
    actions = ["send", "pause", "resume", "stop"]

    class Media:
        js = ["cxm/campaign-audience.js"]
        css = {"all": ["cxm/admin-campaign.css"]}

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("audience/", view(self.audience_view), name=f"{prefix}_audience_new"),
            path(
                "<path:object_id>/audience/",
                view(self.audience_view),
                name=f"{prefix}_audience",
            ),
            path(
                "<path:object_id>/send/",
                view(self.send_view),
                name=f"{prefix}_send",
            ),
            path(
                "<path:object_id>/email/",
                csp_update({"frame-src": [SELF]})(view(self.email_preview_view)),
                name=f"{prefix}_email",
            ),
            path(
                "<path:object_id>/email/html/",
                EMAIL_CSP(xframe_options_sameorigin(view(self.email_html_view))),
                name=f"{prefix}_email_html",
            ),
            *super().get_urls(),
        ]

    def _campaign(self, request, object_id, *, change: bool = False) -> Campaign:
        """The campaign `object_id`, if the user may view (or change) it."""
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404
        allowed = (
            self.has_change_permission(request, campaign)
            if change
            else self.has_view_permission(request, campaign)
        )
        if not allowed:
            raise PermissionDenied
        return campaign

    def audience_view(self, request, object_id=None):
        """
        Returns, as JSON, whom the campaign would invite with the segment given in
        `?segment=` (empty: all customers) and `?contact_frequency_days=` (empty:
        the campaign's or the default): the count, and who is left out and why.
        The same selector as GET /api/campaigns/{id}/audience/.
        """
        if object_id is None:
            if not self.has_add_permission(request):
                raise PermissionDenied
            campaign = Campaign()
        else:
            campaign = self._campaign(request, object_id)
        segment_id = request.GET.get("segment", "").strip()
        if segment_id:
            segment = (
                Segment.objects.filter(pk=segment_id).first()
                if segment_id.isdigit() and len(segment_id) < 19
                else None
            )
            if segment is None:
                return JsonResponse(
                    {"detail": gettext("There is no such segment.")}, status=400
                )
            campaign.segment = segment
        elif "segment" in request.GET:
            campaign.segment = None
        days = request.GET.get("contact_frequency_days", "").strip()
        if days:
            if not days.isdigit() or int(days) > 32767:
                return JsonResponse(
                    {
                        "detail": gettext(
                            "The contact frequency must be a whole number of days."
                        )
                    },
                    status=400,
                )
            campaign.contact_frequency_days = int(days)
        elif "contact_frequency_days" in request.GET:
            campaign.contact_frequency_days = None
        preview = campaign_audience_preview(campaign=campaign)
        summary = audience_summary(preview)
        return JsonResponse(
            {
                **preview,
                "text": summary["text"],
                "excluded_reasons": summary["excluded"],
            }
        )

    def send_view(self, request, object_id):
        """
        GET: the confirmation, with whom sending would invite now. POST: sends the
        campaign under its schedule (campaign_send, as the API does).
        """
        campaign = self._campaign(request, object_id, change=True)
        change_url = reverse("admin:surveys_campaign_change", args=[campaign.pk])
        if request.method == "POST":
            try:
                count = campaign_send(campaign=campaign)
            except ValidationError as e:
                self.message_user(request, " ".join(e.messages), messages.ERROR)
            else:
                self.log_change(
                    request, campaign, [{"changed": {"fields": ["status"]}}]
                )
                self.message_user(
                    request,
                    ngettext(
                        "%(campaign)s: %(count)d invitation queued.",
                        "%(campaign)s: %(count)d invitations queued.",
                        count,
                    )
                    % {"campaign": campaign, "count": count},
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(change_url)
        if campaign.status != CampaignStatus.DRAFT:
            self.message_user(
                request,
                gettext("This campaign was already sent."),
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        preview = campaign_audience_preview(campaign=campaign)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": campaign,
            "title": gettext("Send the campaign")
            if campaign.schedule in ("", ScheduleKind.NOW)
            else gettext("Schedule the campaign"),
            "campaign": campaign,
            "summary": audience_summary(preview),
            "preview": preview,
            "button": send_button(campaign, preview["invited"]),
            "change_url": change_url,
        }
        return TemplateResponse(
            request, "admin/surveys/campaign/send_confirmation.html", context
        )

    def _language(self, request) -> str:
        language = request.GET.get("language", "")
        return language if language in dict(settings.LANGUAGES) else "en"

    def email_preview_view(self, request, object_id):
        """The invitation email in `?language=` as the customer will get it: its
        subject, its HTML part in a sandboxed frame, and its text part."""
        campaign = self._campaign(request, object_id)
        language = self._language(request)
        languages = dict(settings.LANGUAGES)
        email = invitation_preview(campaign=campaign, language=language)
        url = reverse("admin:surveys_campaign_email", args=[campaign.pk])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": campaign,
            "title": gettext("The invitation email in %(language)s")
            % {"language": languages[language]},
            "campaign": campaign,
            "email": email,
            "language": language,
            "html_url": reverse("admin:surveys_campaign_email_html", args=[campaign.pk])
            + f"?language={language}",
            "sandbox": " ".join(EMAIL_SANDBOX),
            "links": [
                {
                    "url": f"{url}?language={code}",
                    "label": gettext("In %(language)s") % {"language": name},
                    "current": code == language,
                }
                for code, name in settings.LANGUAGES
            ],
            "change_url": reverse("admin:surveys_campaign_change", args=[campaign.pk]),
        }
        return TemplateResponse(
            request, "admin/surveys/campaign/email_preview.html", context
        )

    def email_html_view(self, request, object_id):
        """Returns the invitation email's HTML part as a page of its own, which
        email_preview_view frames; its links open in a new tab."""
        campaign = self._campaign(request, object_id)
        html = invitation_preview(campaign=campaign, language=self._language(request))[
            "html"
        ]
        base = '<base target="_blank">'
        html, found = HEAD.subn(lambda m: m.group(0) + base, html, count=1)
        return HttpResponse(
            html if found else base + html, content_type="text/html; charset=utf-8"
        )

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        # The page's buttons: send (or schedule) a draft, the email in each
        # language.
        campaign = obj
        tools = []
        if campaign is not None:
            if campaign.status == CampaignStatus.DRAFT and self.has_change_permission(
                request, campaign
            ):
                tools.append(
                    {
                        "url": reverse(
                            "admin:surveys_campaign_send", args=[campaign.pk]
                        ),
                        "label": send_label(campaign),
                    }
                )
            email_url = reverse("admin:surveys_campaign_email", args=[campaign.pk])
            languages = dict(settings.LANGUAGES)
            tools += [
                {
                    "url": f"{email_url}?language={code}",
                    "label": gettext("Email in %(language)s")
                    % {"language": languages[code]},
                }
                for code in languages
            ]
        context["campaign_tools"] = tools
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        # The service's rules (a sent campaign is history), not a bare save.
        fields = {
            name: value
            for name, value in form.cleaned_data.items()
            if name in CAMPAIGN_FIELDS
        }
        try:
            if change:
                saved = campaign_update(campaign=obj, **fields)
            else:
                saved = campaign_create(**fields)
        except ValidationError as e:
            raise _Refused(e)
        # The admin goes on with the object its form built: make it this one.
        obj.pk, obj.created_at = saved.pk, saved.created_at
        obj._state.adding = False
        obj._state.db = saved._state.db

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except _Refused as refused:
            self.message_user(request, " ".join(refused.error.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def get_queryset(self, request):
        return metrics.campaigns_with_counts(super().get_queryset(request))

    def get_actions(self, request):
        # Deleting many at once would list every invitation and answer first.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        # A sent campaign is history: its invitations, answers and follow-ups.
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def delete_service(self, obj):
        campaign_delete(campaign=obj)

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if obj is not None and obj.status != CampaignStatus.DRAFT:
            # Who was invited to what is history once the campaign went out.
            return [*fields, "survey", "segment", *SCHEDULE_FIELDS]
        return fields

    @admin.display(description=_("invited"), ordering="invited")
    def invited(self, obj):
        return obj.invited

    @admin.display(description=_("responded"), ordering="response_counts__responses")
    def responded(self, obj):
        return metrics.campaign_responded(obj)

    @admin.display(description=_("headline metric"))
    def metric(self, obj):
        result = metrics.campaign_metric(obj)
        return None if result is None else _metric_headline(obj.survey.kind, result)

    @admin.display(description=_("audience"))
    def audience_preview(self, obj):
        # Live on a draft: campaign-audience.js asks audience_view again whenever
        # the segment (or the contact frequency) chosen on the form changes.
        if obj.pk is None:
            url = reverse("admin:surveys_campaign_audience_new")
        else:
            url = reverse("admin:surveys_campaign_audience", args=[obj.pk])
        summary = audience_summary(campaign_audience_preview(campaign=obj))
        return format_html(
            '<div id="audience-preview" data-url="{}" aria-live="polite">'
            '<p class="audience-count">{}</p><ul class="audience-excluded">{}</ul>'
            "</div>",
            url,
            summary["text"],
            format_html_join(
                "",
                "<li>{}: {}</li>",
                ((r["label"], r["count"]) for r in summary["excluded"]),
            ),
        )

    @admin.display(description=_("headline metric"))
    def metric_summary(self, obj):
        if obj is None or obj.pk is None:
            return None
        kind = obj.survey.kind
        spec = KINDS.get(kind)
        if spec is None:
            return gettext("A custom survey has no headline score.")
        result = metrics.metric(kind, campaign=obj)
        if not result.responses:
            return _metric_headline(kind, result)
        counts = [
            (
                f"{Bucket(bucket.bucket).label} ({_scores(bucket.low, bucket.high)})",
                count,
            )
            for bucket, count in zip(spec.buckets, _bucket_counts(result), strict=True)
        ]
        return format_html(
            "<p>{}</p><ul>{}</ul>",
            _metric_headline(kind, result),
            format_html_join("", "<li>{}: {}</li>", counts),
        )

    @admin.display(description=_("invitations"))
    def invitation_summary(self, obj):
        if obj is None or obj.pk is None:
            return None
        stats = metrics.campaign_stats(obj, with_metric=False)
        url = reverse("admin:surveys_invitation_changelist")

        def listed(label, count, **filters):
            # The whole line is the link: a link inside text would need more than
            # its colour to stand out.
            query = urlencode({"campaign__id__exact": obj.pk, **filters})
            return format_html(
                '<li><a href="{}?{}">{}: {}</a></li>', url, query, label, count
            )

        states = format_html_join(
            "",
            "{}",
            (
                (listed(label, stats.states[value], status__exact=value),)
                for value, label in InvitationStatus.choices
                if stats.states[value]
            ),
        )
        reasons = format_html_join(
            "",
            "{}",
            (
                (listed(label, stats.skipped[value], skip_reason__exact=value),)
                for value, label in SkipReason.choices
                if stats.skipped[value]
            ),
        )
        rate = stats.response_rate
        return format_html(
            "<p>{}</p><ul>{}</ul>{}<p>{}</p><p>{}</p>",
            ngettext("%(count)d invitation", "%(count)d invitations", stats.invited)
            % {"count": stats.invited},
            states,
            format_html("<p>{}</p><ul>{}</ul>", gettext("Skipped because:"), reasons)
            if reasons
            else "",
            ngettext(
                "%(count)d reminder sent to %(customers)d customers",
                "%(count)d reminders sent to %(customers)d customers",
                stats.reminders_sent,
            )
            % {"count": stats.reminders_sent, "customers": stats.reminded},
            gettext(
                "Response rate: %(rate)s (%(responses)d of %(delivered)d delivered)"
            )
            % {
                "rate": "—" if rate is None else f"{rate} %",
                "responses": stats.responses,
                "delivered": stats.delivered,
            },
        )

    @admin.action(description=_("Send the selected campaigns"))
    def send(self, request, queryset):
        for campaign in queryset:
            try:
                count = campaign_send(campaign=campaign)
            except ValidationError as e:
                self.message_user(
                    request, f"{campaign}: {' '.join(e.messages)}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    ngettext(
                        "%(campaign)s: %(count)d invitation queued.",
                        "%(campaign)s: %(count)d invitations queued.",
                        count,
                    )
                    % {"campaign": campaign, "count": count},
                )

    def _move(self, request, queryset, service):
        for campaign in queryset:
            try:
                campaign = service(campaign=campaign)
            except ValidationError as e:
                self.message_user(
                    request, f"{campaign}: {' '.join(e.messages)}", messages.ERROR
                )
            else:
                self.message_user(
                    request, f"{campaign}: {campaign.get_status_display()}"
                )

    @admin.action(description=_("Pause the selected campaigns"))
    def pause(self, request, queryset):
        self._move(request, queryset, campaign_pause)

    @admin.action(description=_("Resume the selected campaigns"))
    def resume(self, request, queryset):
        self._move(request, queryset, campaign_resume)

    @admin.action(description=_("Stop the selected campaigns"))
    def stop(self, request, queryset):
        self._move(request, queryset, campaign_stop)


class HistoryAdmin(admin.ModelAdmin):
    """
    Rows that record what happened (created by sending and by customers' answers):
    viewed in the admin, never added or edited there, which would bypass the rules
    that send them and open follow-ups.
    """

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting one would take its follow-up and timeline with it; deleting the
        # customer (erasure) is the way to remove what a customer gave us.
        return False


@admin.register(Invitation)
class InvitationAdmin(LargeListMixin, HistoryAdmin):
    # The status first, the link to the invitation; the customer links to their
    # staff page.
    list_display = [
        "status",
        customer_link,
        "campaign",
        "skip_reason",
        "due_at",
        "sent_at",
        "reminders_sent",
        "reminded_at",
        "answered_at",
        "expires_at",
    ]
    list_filter = ["status", "skip_reason", "campaign"]
    search_fields = ["customer__email", "token"]
    list_select_related = ["customer", "campaign"]
    raw_id_fields = ["customer", "campaign"]
    readonly_fields = [
        "token",
        "created_at",
        "due_at",
        "sent_at",
        "skip_reason",
        "reminders_sent",
        "reminded_at",
        "remind_due_at",
        "expires_at",
        "answered_at",
        "complained_at",
        "claimed_at",
        "attempts",
    ]


def _answer_text(question: Question | None, value) -> str:
    """An answer as staff read it: the number, the text, the choices' labels."""
    if isinstance(value, list):
        labels = dict(question.choice_labels()) if question is not None else {}
        return ", ".join(labels.get(v, v) for v in value)
    return str(value)


class BucketFilter(admin.SimpleListFilter):
    """Responses by the bucket of their headline score (detractors, promoters …)."""

    title = _("bucket")
    parameter_name = "bucket"

    def lookups(self, request, model_admin):
        return Bucket.choices

    def queryset(self, request, queryset):
        if self.value() in Bucket.values:
            return queryset.filter(bucket_q(self.value()))
        return queryset


@admin.register(Response)
class ResponseAdmin(LargeListMixin, HistoryAdmin):
    # The time first, the link to the response; the customer links to their
    # staff page.
    list_display = [
        "created_at",
        customer_link,
        "campaign",
        "kind",
        "score",
        "bucket",
        "comment_short",
    ]
    list_filter = [
        "survey",
        "campaign",
        ("survey__kind", admin.ChoicesFieldListFilter),
        BucketFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = ["comment", "customer__email"]
    # A million rows: one count per page, PostgreSQL's estimate on a large list.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # The response's own foreign keys: never a join through its invitation.
    list_select_related = ["customer", "campaign", "survey"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "customer",
                    "campaign",
                    "survey",
                    "invitation",
                    "score",
                    "bucket",
                    "comment",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
        (_("Answers"), {"fields": ["answers_list"]}),
        (_("Earlier versions"), {"fields": ["revisions_list"]}),
    ]
    readonly_fields = ["bucket", "answers_list", "revisions_list"]
    actions = ["export_csv"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("customer", "campaign", "survey")
        )

    @admin.action(description=_("Export the chosen responses as CSV (for Excel)"))
    def export_csv(self, request, queryset):
        # A column per question when the chosen responses are of one survey.
        surveys = list(queryset.order_by().values_list("survey", flat=True)[:1])
        survey = None
        if surveys and not queryset.exclude(survey=surveys[0]).exists():
            survey = Survey.objects.get(pk=surveys[0])
        return export_response(responses=queryset, survey=survey, bom=True)

    @admin.display(description=_("kind"), ordering="survey__kind")
    def kind(self, obj):
        return obj.survey.get_kind_display()

    @admin.display(description=_("bucket"))
    def bucket(self, obj):
        return None if obj.bucket is None else Bucket(obj.bucket).label

    @admin.display(description=_("comment"), ordering="comment")
    def comment_short(self, obj):
        return Truncator(obj.comment).chars(80)

    @admin.display(description=_("answers"))
    def answers_list(self, obj):
        answers = obj.answers.select_related("question__survey").order_by(
            "question__position"
        )
        rows = [
            (
                answer.question.display_text(),
                _answer_text(answer.question, answer.value),
            )
            for answer in answers
        ]
        if not rows:
            return None
        return format_html(
            "<table><tbody>{}</tbody></table>",
            format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows),
        )

    @admin.display(description=_("earlier versions"))
    def revisions_list(self, obj):
        revisions = list(obj.revisions.all())
        if not revisions:
            return gettext("None: the answers were never changed.")
        questions = {str(q.pk): q for q in obj.survey.questions.all()}
        rows = []
        for revision in revisions:
            # In the survey's order; a question removed since goes last.
            kept = sorted(
                revision.answers.items(),
                key=lambda item: (
                    item[0] not in questions,
                    questions[item[0]].position if item[0] in questions else 0,
                ),
            )
            answers = format_html_join(
                "",
                "<li>{}: {}</li>",
                [
                    (
                        questions[pk].display_text()
                        if pk in questions
                        else gettext("Question %(id)s (removed)") % {"id": pk},
                        _answer_text(questions.get(pk), value),
                    )
                    for pk, value in kept
                ],
            )
            rows.append(
                (
                    date_format(
                        timezone.localtime(revision.answered_at), "DATETIME_FORMAT"
                    ),
                    date_format(
                        timezone.localtime(revision.replaced_at), "DATETIME_FORMAT"
                    ),
                    answers,
                )
            )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("answered at"),
            gettext("replaced at"),
            gettext("answers"),
            format_html_join(
                "", "<tr><td>{}</td><td>{}</td><td><ul>{}</ul></td></tr>", rows
            ),
        )
