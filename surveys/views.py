import re
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from rest_framework.exceptions import NotFound

from cxm.access import cx_staff_required
from cxm.customers.services import customer_unsubscribe
from cxm.throttling import token_miss, unsubscribe_count
from cxm.views import customer_page

from . import dashboard as dashboard_figures
from .exports import filtered_export
from .filters import ResponseFilter
from .kinds import Bucket, kind_of, score_bucket
from .models import Campaign, Question, QuestionRole, QuestionType, Response
from .selectors import (
    invitation_open,
    responses_listed,
    responses_page,
    survey_questions,
)
from .services import response_record

SCORE_TEXT = re.compile(r"[0-9]{1,2}")
EMAIL_BREAKS = re.compile(r"(?<=[@.])")


def _too_many(request, *, limit: str, wait: int, language=None):
    """The 429 page of a limit ("token-miss" or "unsubscribe") an address went over."""
    response = customer_page(
        request, "429.html", {"limit": limit}, status=429, language=language
    )
    response["Retry-After"] = str(wait)
    return response


def _unknown(request):
    """
    The page of a link we do not know; a 429 once the address has missed too often.
    Only misses count: a link that exists is served from any address.
    """
    if (wait := token_miss(request)) is not None:
        return _too_many(request, limit="token-miss", wait=wait)
    return customer_page(request, "surveys/unknown.html", {}, status=404)


@dataclass
class Field:
    """One question as the answer page draws it, with what was answered or typed."""

    question: Question
    value: object = None
    errors: list = dataclass_field(default_factory=list)

    @property
    def name(self) -> str:
        return self.question.field_name

    @property
    def text(self) -> str:
        return self.question.display_text()

    @property
    def labels(self) -> tuple[str, str]:
        return self.question.scale_labels()

    @property
    def options(self) -> list[dict]:
        """The buttons of a score or the options of a choice: value, label, checked,
        and for the headline score the tone of its bucket (a colour cue)."""
        question = self.question
        if question.type == QuestionType.SCORE:
            low, high = question.scale
            kind = (
                question.survey.kind if question.role == QuestionRole.HEADLINE else ""
            )
            chosen = str(self.value) if self.value is not None else ""
            return [
                {
                    "value": str(n),
                    "label": str(n),
                    "checked": str(n) == chosen,
                    "tone": score_bucket(kind, n).tone if kind else "",
                }
                for n in range(low, high + 1)
            ]
        picked = self.value if isinstance(self.value, list) else [self.value]
        return [
            {"value": value, "label": label, "checked": value in picked}
            for value, label in question.choice_labels()
        ]

    @property
    def anchor(self) -> str:
        """The id of the question's first input, where an error summary links."""
        question = self.question
        if question.type in (QuestionType.SHORT_TEXT, QuestionType.LONG_TEXT):
            return f"id_{self.name}"
        first = self.options[0]["value"] if self.options else ""
        return f"{self.name}-{first}"

    @property
    def two_rows(self) -> bool:
        """A scale of more than seven scores wraps to two rows on a phone."""
        scale = self.question.scale
        return scale is not None and scale[1] - scale[0] + 1 > 7


def _form_value(question: Question, data):
    """
    Returns what the form sent for `question` as response_record takes it: an int
    score (or the text as sent, which it refuses), a choice, a list, text.
    """
    values = data.getlist(question.field_name)
    if question.type == QuestionType.MULTIPLE_CHOICE or len(values) > 1:
        # Two scores for one question: response_record refuses the list.
        return values
    raw = values[0] if values else ""
    if question.type == QuestionType.SCORE:
        raw = raw.strip()
        # Only ASCII digits: "²".isdigit() is true, int("²") fails.
        return int(raw) if SCORE_TEXT.fullmatch(raw) else raw
    return raw


def _earlier_values(invitation) -> dict:
    """The earlier answers of this invitation's customer, by question id."""
    response = getattr(invitation, "response", None)
    if response is None:
        return {}
    return {a.question_id: a.value for a in response.answers.all()}


def _steps(survey) -> tuple[list[Question], list[Question]]:
    """
    The questions of the first page and of the second: with a headline score, the
    score alone first (saved with one tap from the email's link), then the rest;
    a custom survey asks everything on one page.
    """
    questions = survey_questions(survey)
    headline = [q for q in questions if q.role == QuestionRole.HEADLINE]
    if not headline:
        return questions, []
    return headline, [q for q in questions if q.role != QuestionRole.HEADLINE]


def _answer_step(request, token: str, *, step: int):
    # A page shows the earlier answers; a POST does without them.
    invitation = invitation_open(token=token, answers=request.method != "POST")
    if invitation is None:
        return _unknown(request)
    language = invitation.customer.locale
    if invitation.is_expired:
        # The link from the email (with its ?score=), the page and a late POST
        # alike: a polite closed page, and nothing recorded.
        return customer_page(
            request, "surveys/closed.html", {}, status=410, language=language
        )
    survey = invitation.campaign.survey
    first, rest = _steps(survey)
    if step == 2 and not (rest and hasattr(invitation, "response")):
        # Nothing more to ask, or the score is not saved yet: start at the start.
        return redirect("surveys:answer", token=token)
    questions = first if step == 1 else rest
    status = 200
    with translation.override(language):
        if request.method == "POST":
            # The page's questions, and any other the form sent (a page that asks
            # everything at once).
            sent = [
                q
                for q in survey_questions(survey)
                if q in questions or q.field_name in request.POST
            ]
            values = {q.field_name: _form_value(q, request.POST) for q in sent}
            fields = [Field(q, values.get(q.field_name)) for q in sent]
            try:
                response_record(invitation=invitation, answers=values)
            except ValidationError as e:
                errors = e.message_dict if hasattr(e, "error_dict") else {}
                for field in fields:
                    field.errors = errors.get(field.name, [])
                page_errors = [] if errors else e.messages
                status = 400
            else:
                more = rest and not any(q in rest for q in sent)
                return redirect(
                    "surveys:more" if step == 1 and more else "surveys:thanks",
                    token=token,
                )
        else:
            earlier = _earlier_values(invitation)
            fields = [Field(q, earlier.get(q.pk)) for q in questions]
            # The score clicked in the email, if it is one the page shows.
            if step == 1 and (score := request.GET.get("score", "")) and fields:
                field = fields[0]
                if field.question.role == QuestionRole.HEADLINE and any(
                    o["value"] == score for o in field.options
                ):
                    field.value = int(score)
            page_errors = []
    response = getattr(invitation, "response", None)
    context = {
        "invitation": invitation,
        "survey": survey,
        "fields": fields,
        "page_errors": page_errors,
        "has_errors": bool(page_errors) or any(f.errors for f in fields),
        "step": step,
        "one_tap": step == 1 and bool(rest),
        "answered_before": response,
    }
    return customer_page(
        request, "surveys/answer.html", context, status=status, language=language
    )


@require_http_methods(["GET", "HEAD", "POST"])
def answer(request, token: str):
    """
    The page of a personal link: the score (preselected from the email's ?score=),
    saved with one tap; a custom survey's questions all at once. GET never records
    anything (mail scanners open every link); POST does, before the page answers.
    """
    return _answer_step(request, token, step=1)


@require_http_methods(["GET", "HEAD", "POST"])
def more(request, token: str):
    """The questions after the score, for a customer whose score is saved."""
    return _answer_step(request, token, step=2)


def thanks(request, token: str):
    invitation = invitation_open(token=token)
    if invitation is None:
        return _unknown(request)
    if not hasattr(invitation, "response"):
        return redirect("surveys:answer", token=token)  # nothing answered yet
    response = invitation.response
    survey = invitation.campaign.survey
    tone = (
        score_bucket(survey.kind, response.score).tone
        if response.score is not None and kind_of(survey.kind)
        else ""
    )
    return customer_page(
        request,
        "surveys/thanks.html",
        {
            "invitation": invitation,
            "response": response,
            "tone": tone,
            "more": _steps(survey)[1],
            "promoter_link": settings.PROMOTER_LINK_URL if tone == "positive" else "",
        },
        language=invitation.customer.locale,
    )


@csrf_exempt  # the token in the address is the credential; no cookie is involved
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    """
    GET asks to confirm (scanners follow links); POST unsubscribes: the page's
    button, or a mail provider's RFC 8058 one-click post (`List-Unsubscribe=One-Click`,
    with no cookie and no CSRF token).
    """
    invitation = invitation_open(token=token)
    if request.method == "POST" and request.POST.get("List-Unsubscribe") == (
        "One-Click"
    ):
        return _unsubscribe_one_click(request, invitation)
    if invitation is None:
        return _unknown(request)
    done = False
    if request.method == "POST":
        if (wait := unsubscribe_count(request, token=invitation.token)) is not None:
            return _too_many(
                request,
                limit="unsubscribe",
                wait=wait,
                language=invitation.customer.locale,
            )
        customer_unsubscribe(customer=invitation.customer)
        done = True
    return customer_page(
        request,
        "surveys/unsubscribe.html",
        {"invitation": invitation, "done": done},
        language=invitation.customer.locale,
    )


def _unsubscribe_one_click(request, invitation):
    """
    A mail provider's RFC 8058 post: unsubscribes the link's customer, and answers
    an unknown link the same (a provider cannot act on a difference, a prober
    learns nothing from one). Not a token miss: providers post what they were given.
    """
    if invitation is not None:
        if (wait := unsubscribe_count(request, token=invitation.token)) is not None:
            return _too_many(request, limit="unsubscribe", wait=wait)
        customer_unsubscribe(customer=invitation.customer)
    return customer_page(request, "surveys/unsubscribe.html", {"done": True})


def csrf_failure(request, reason=""):
    """
    CSRF_FAILURE_VIEW: tells a customer whose page went stale to open it again, in
    their language; the staff pages keep Django's page, which names the reason.
    """
    match = request.resolver_match
    if match is None or match.namespace != "surveys" or "token" not in match.kwargs:
        return django_csrf_failure(request, reason=reason)
    invitation = invitation_open(token=match.kwargs["token"])
    return customer_page(
        request,
        "surveys/expired.html",
        {"again_url": request.path},
        status=403,
        language=invitation.customer.locale if invitation else None,
    )


@cx_staff_required
def dashboard(request):
    """The dashboard: the filters' form, then the figures of surveys.dashboard; a
    400 with the form's messages for filters that do not hold."""
    from cxm.customers.models import Segment

    kind = dashboard_figures.kind_from(request.GET)
    segments = list(Segment.objects.order_by("name"))
    campaigns = list(
        Campaign.objects.filter(survey__kind=kind)
        .select_related("survey")
        .order_by("-created_at", "-pk")[: dashboard_figures.CAMPAIGN_CHOICES]
    )
    # Every filter is optional: no query is the last twelve weeks' NPS.
    form = dashboard_figures.DashboardForm(
        request.GET, segments=segments, campaigns=campaigns
    )
    if not form.is_valid():
        return render(request, "surveys/dashboard.html", {"form": form}, status=400)
    figures = dashboard_figures.figures(form.cleaned_data, segments=segments)
    return render(request, "surveys/dashboard.html", {"form": form, "figures": figures})


def _responses_filter(request) -> tuple[ResponseFilter, bool]:
    """Returns the responses page's filters and whether they are valid; an id that
    names nothing is said as the form's error."""
    filterset = ResponseFilter(
        request.GET, queryset=responses_listed(Response.objects.all()), request=request
    )
    filterset.offer_choices()
    try:
        valid = filterset.is_valid()
    except NotFound as e:
        filterset.form.add_error(None, str(e.detail))
        valid = False
    return filterset, valid


@cx_staff_required
def responses(request):
    """
    The responses page: what customers said, newest first, filtered as the API list
    and the CSV export are (ResponseFilter), a page at a time after a cursor.
    """
    filterset, valid = _responses_filter(request)
    rows, next_cursor, status = [], None, 200
    if valid:
        try:
            rows, next_cursor = responses_page(
                filterset.qs, cursor=request.GET.get("cursor")
            )
        except ValueError:
            filterset.form.add_error(None, _("This page link is no longer valid."))
            valid = False
    for row in rows:
        row.bucket_label = Bucket(row.bucket).label if row.bucket else ""
        # A long address may wrap after its @ and dots, never inside a word.
        row.email_parts = EMAIL_BREAKS.split(row.customer.email)
        row.other_answers = [
            a for a in row.answers.all() if a.question.role == QuestionRole.EXTRA
        ]
    if not valid:
        status = 400
    query = request.GET.copy()
    query.pop("cursor", None)
    return render(
        request,
        "surveys/responses.html",
        {
            "form": filterset.form,
            "rows": rows,
            "next_cursor": next_cursor,
            "query": query.urlencode(),
            "first_page": not request.GET.get("cursor"),
        },
        status=status,
    )


@cx_staff_required
def responses_export(request):
    """The CSV of the responses the page's filters choose (every page of them);
    ?bom=1 for Excel."""
    filterset, valid = _responses_filter(request)
    if not valid:
        return HttpResponseBadRequest(
            "\n".join(
                str(m) for messages in filterset.form.errors.values() for m in messages
            ),
            content_type="text/plain; charset=utf-8",
        )
    return filtered_export(filterset, bom=request.GET.get("bom") in ("1", "true"))
