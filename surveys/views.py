from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import translation
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.http import require_http_methods

from cxm.access import cx_staff_required
from cxm.customers.services import customer_unsubscribe

from . import metrics
from .forms import AnswerForm
from .models import QuestionKind
from .selectors import invitation_open
from .services import response_record


def _page(request, template: str, context: dict, *, status: int = 200, language=None):
    """Renders a customer page in the customer's language (or the browser's)."""
    language = language or translation.get_language()
    with translation.override(language):
        response = render(
            request, template, {"language": language, **context}, status=status
        )
    response["Content-Language"] = language
    return response


def _unknown(request):
    return _page(request, "surveys/unknown.html", {}, status=404)


def _questions(invitation) -> dict:
    by_kind = {q.kind: q for q in invitation.campaign.survey.questions.all()}
    return {
        "score_question": by_kind.get(QuestionKind.SCORE),
        "comment_question": by_kind.get(QuestionKind.COMMENT),
    }


@require_http_methods(["GET", "HEAD", "POST"])
def answer(request, token: str):
    """
    The answer page of a personal link. GET shows the question (with ?score=
    preselected) and never records anything; POST records the answer.
    """
    invitation = invitation_open(token=token)
    if invitation is None:
        return _unknown(request)
    language = invitation.customer.locale
    if invitation.campaign.is_expired:
        return _page(request, "surveys/closed.html", {}, status=410, language=language)

    survey = invitation.campaign.survey
    scores = [str(n) for n in range(survey.score_range[0], survey.score_range[1] + 1)]
    with translation.override(language):
        if request.method == "POST":
            form = AnswerForm(request.POST, score_range=survey.score_range)
            if form.is_valid():
                try:
                    response_record(
                        invitation=invitation,
                        score=form.cleaned_data["score"],
                        comment=form.cleaned_data["comment"],
                    )
                except ValidationError as e:
                    form.add_error(None, e)
                else:
                    return redirect("surveys:thanks", token=token)
            status = 400
        else:
            previous = getattr(invitation, "response", None)
            initial = {}
            if previous is not None:
                initial = {"score": previous.score, "comment": previous.comment}
            # Only a score the page shows: "²".isdigit() is true, int("²") fails.
            if (score := request.GET.get("score", "")) in scores:
                initial["score"] = int(score)
            form = AnswerForm(initial=initial, score_range=survey.score_range)
            status = 200
    selected = form.data.get("score") if form.is_bound else form.initial.get("score")
    context = {
        "invitation": invitation,
        "form": form,
        "selected": str(selected) if selected is not None else "",
        "scores": scores,
        "answered_before": hasattr(invitation, "response"),
        **_questions(invitation),
    }
    return _page(
        request, "surveys/answer.html", context, status=status, language=language
    )


def thanks(request, token: str):
    invitation = invitation_open(token=token)
    if invitation is None or not hasattr(invitation, "response"):
        return _unknown(request)
    return _page(
        request,
        "surveys/thanks.html",
        {"invitation": invitation, "response": invitation.response},
        language=invitation.customer.locale,
    )


@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request, token: str):
    """GET asks to confirm (scanners follow links); POST unsubscribes."""
    invitation = invitation_open(token=token)
    if invitation is None:
        return _unknown(request)
    done = False
    if request.method == "POST":
        customer_unsubscribe(customer=invitation.customer)
        done = True
    return _page(
        request,
        "surveys/unsubscribe.html",
        {"invitation": invitation, "done": done},
        language=invitation.customer.locale,
    )


def csrf_failure(request, reason=""):
    """
    CSRF_FAILURE_VIEW: tells a customer whose page went stale to open it again, in
    their language; the staff pages keep Django's page, which names the reason.
    """
    match = request.resolver_match
    if match is None or match.namespace != "surveys" or "token" not in match.kwargs:
        return django_csrf_failure(request, reason=reason)
    invitation = invitation_open(token=match.kwargs["token"])
    return _page(
        request,
        "surveys/expired.html",
        {"again_url": request.path},
        status=403,
        language=invitation.customer.locale if invitation else None,
    )


@cx_staff_required
def dashboard(request):
    campaigns = metrics.campaigns_with_nps().order_by("-created_at")[:50]
    rows = [(c, metrics.nps_from_row(c)) for c in campaigns]
    return render(
        request,
        "surveys/dashboard.html",
        {"overall": metrics.nps(), "rows": rows},
    )
