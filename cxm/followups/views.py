from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from cxm.access import cx_staff_required

from . import reports, services
from .forms import (
    ContactForm,
    FilterForm,
    NoteForm,
    ReportFilterForm,
    ResolveForm,
    StatusNoteForm,
)
from .models import FollowUp
from .selectors import (
    followup_for_user,
    followups_filter,
    followups_visible_to,
    may_see_reports,
)


def _get_followup_for_user(request, pk: int) -> FollowUp:
    """Returns the follow-up if the signed-in user may see it, else 404."""
    return followup_for_user(request.user, pk)


@cx_staff_required
def followup_list(request):
    form = FilterForm(request.GET or None)
    qs = followups_visible_to(request.user)
    if form.is_valid():
        overdue = {"yes": True, "no": False}.get(form.cleaned_data["overdue"])
        qs = followups_filter(
            qs,
            status=form.cleaned_data["status"],
            owner=form.cleaned_data["owner"],
            overdue=overdue,
        )
    else:
        qs = qs.none() if form.is_bound else followups_filter(qs)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "followups/list.html",
        {"form": form, "page": page, "query": query.urlencode()},
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@cx_staff_required
def followup_detail(request, pk: int):
    followup = _get_followup_for_user(request, pk)
    return _detail(request, followup)


def _detail(
    request,
    followup,
    *,
    note_form=None,
    resolve_form=None,
    contact_form=None,
    status=200,
):
    events = followup.events.select_related("actor")
    extra_answers = []
    if followup.response_id:
        # What else the customer answered, beyond the score and its reason.
        extra_answers = [
            a
            for a in followup.response.answers.select_related("question__survey")
            if not a.question.role
        ]
    return render(
        request,
        "followups/detail.html",
        {
            "followup": followup,
            "customer": followup.customer,
            "response": followup.response,
            "extra_answers": extra_answers,
            "events": events,
            "note_form": note_form or NoteForm(),
            "resolve_form": resolve_form or ResolveForm(),
            "contact_form": contact_form or ContactForm(),
            "status_form": StatusNoteForm(),
        },
        status=status,
    )


def _act(request, followup, action, success: str, **kwargs):
    """Runs a service on the follow-up; a refusal becomes a message, not a 500."""
    try:
        action(followup=followup, actor=request.user, **kwargs)
    except (ValidationError, PermissionDenied) as e:
        text = " ".join(e.messages) if isinstance(e, ValidationError) else str(e)
        messages.error(request, text)
    else:
        messages.success(request, success)
    return redirect(followup)


@require_POST
@cx_staff_required
def followup_take(request, pk: int):
    followup = _get_followup_for_user(request, pk)
    return _act(
        request,
        followup,
        services.followup_assign,
        _("You own this follow-up now."),
        owner=request.user,
    )


@require_POST
@cx_staff_required
def followup_note(request, pk: int):
    followup = _get_followup_for_user(request, pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _detail(request, followup, note_form=form, status=400)
    services.followup_add_note(
        followup=followup, actor=request.user, text=form.cleaned_data["text"]
    )
    messages.success(request, _("Note added."))
    return redirect(followup)


@require_POST
@cx_staff_required
def followup_contact(request, pk: int):
    followup = _get_followup_for_user(request, pk)
    form = ContactForm(request.POST)
    if not form.is_valid():
        return _detail(request, followup, contact_form=form, status=400)
    return _act(
        request,
        followup,
        services.followup_log_contact,
        _("Contact recorded."),
        channel=form.cleaned_data["channel"],
        note=form.cleaned_data["note"],
    )


def _move(action, success):
    @require_POST
    @cx_staff_required
    def view(request, pk: int):
        followup = _get_followup_for_user(request, pk)
        form = StatusNoteForm(request.POST)
        note = form.cleaned_data["note"] if form.is_valid() else ""
        return _act(request, followup, action, success, note=note)

    return view


followup_wait = _move(
    services.followup_wait_on_customer, _("Waiting on the customer now.")
)
followup_close = _move(services.followup_close, _("Closed."))
followup_reopen = _move(services.followup_reopen, _("Reopened."))


@require_POST
@cx_staff_required
def followup_resolve(request, pk: int):
    followup = _get_followup_for_user(request, pk)
    form = ResolveForm(request.POST)
    if form.is_valid():
        try:
            services.followup_resolve(
                followup=followup,
                actor=request.user,
                resolution=form.cleaned_data["resolution"],
                root_cause=form.cleaned_data["root_cause"],
            )
        except ValidationError as e:
            if not hasattr(e, "error_dict"):
                # About the follow-up (resolved meanwhile), not what was typed.
                messages.error(request, " ".join(e.messages))
                return redirect(followup)
            form.add_error(None, e)
        else:
            messages.success(request, _("Resolved. Thank you for closing the loop."))
            return redirect(followup)
    return _detail(request, followup, resolve_form=form, status=400)


def _report_form(request) -> ReportFilterForm:
    """The reports' filters, for a user who may read reports (else 403)."""
    if not may_see_reports(request.user):
        raise PermissionDenied
    return ReportFilterForm(request.GET or None, user=request.user)


def _report(request, form: ReportFilterForm) -> reports.FollowUpReport | None:
    if form.is_bound and not form.is_valid():
        return None
    data = form.cleaned_data if form.is_bound else {}
    return reports.followups_report(
        user=request.user,
        since=data.get("since"),
        until=data.get("until"),
        team=data.get("team"),
    )


@cx_staff_required
def followup_reports(request):
    form = _report_form(request)
    report = _report(request, form)
    return render(
        request,
        "followups/reports.html",
        {
            "form": form,
            "report": report,
            "query": request.GET.urlencode(),
            "sections": [
                ("team", _("By team"), report.by_team if report else []),
                ("owner", _("By owner"), report.by_owner if report else []),
                (
                    "root-cause",
                    _("By root cause"),
                    report.by_root_cause if report else [],
                ),
                ("week", _("By week of opening"), report.by_week if report else []),
            ],
        },
        status=200 if report else 400,
    )


@cx_staff_required
def followup_reports_csv(request):
    form = _report_form(request)
    report = _report(request, form)
    if report is None:
        return HttpResponseBadRequest(
            " ".join(e for errors in form.errors.values() for e in errors),
            content_type="text/plain; charset=utf-8",
        )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="followup-reports.csv"'
    reports.report_csv_write(report, response)
    return response
