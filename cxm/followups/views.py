from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from cxm.access import cx_staff_required
from cxm.throttling import token_miss
from cxm.views import customer_page

from . import preferences, replies, reports, services
from .filters import FollowUpFilter
from .forms import (
    BulkAssignForm,
    ContactForm,
    NoteForm,
    PreferencesForm,
    ReplyForm,
    ReportFilterForm,
    ResolveForm,
    StatusNoteForm,
)
from .models import FollowUp
from .selectors import (
    followup_context,
    followup_for_user,
    followup_owner_choices,
    followups_by_ids,
    followups_visible_to,
    may_reassign,
    may_see_reports,
)


def _get_followup_for_user(request, pk: int) -> FollowUp:
    """Returns the follow-up if the signed-in user may see it, else 404."""
    return followup_for_user(request.user, pk)


@cx_staff_required
def followup_list(request):
    filterset = FollowUpFilter(
        request.GET, queryset=followups_visible_to(request.user), request=request
    )
    filterset.offer_choices()
    valid = filterset.is_valid()
    qs = filterset.qs if valid else FollowUp.objects.none()
    page = Paginator(qs.values_list("pk", flat=True), 50).get_page(
        request.GET.get("page")
    )
    page.object_list = followups_by_ids(qs, page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    bulk_form = None
    if valid and may_reassign(request.user):
        bulk_form = BulkAssignForm(owners=followup_owner_choices(request.user))
    return render(
        request,
        "followups/list.html",
        {
            "form": filterset.form,
            "page": page,
            "query": query.urlencode(),
            "bulk_form": bulk_form,
        },
        status=200 if valid else 400,
    )


@require_POST
@cx_staff_required
def followup_bulk_assign(request):
    """
    Gives the chosen follow-ups to one owner, each through followup_assign and its
    checks: what it refuses is named in a message, the rest is done.
    """
    form = BulkAssignForm(request.POST, owners=followup_owner_choices(request.user))
    back = request.POST.get("next", "")
    if not back.startswith("?"):
        back = ""
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(reverse("followups:list") + back)
    owner = form.cleaned_data["owner"]
    visible = followups_visible_to(request.user).in_bulk(form.cleaned_data["followup"])
    done, refused = 0, []
    for pk in form.cleaned_data["followup"]:
        followup = visible.get(pk)
        if followup is None:
            refused.append(_("#%(id)s: no such follow-up.") % {"id": pk})
            continue
        try:
            services.followup_assign(followup=followup, owner=owner, actor=request.user)
        except (ValidationError, PermissionDenied) as e:
            text = " ".join(e.messages) if isinstance(e, ValidationError) else str(e)
            refused.append(f"#{pk}: {text}")
        else:
            done += 1
    if done:
        messages.success(
            request,
            ngettext(
                "%(n)d follow-up given to %(owner)s.",
                "%(n)d follow-ups given to %(owner)s.",
                done,
            )
            % {"n": done, "owner": owner.get_username()},
        )
    for text in refused:
        messages.error(request, text)
    return redirect(reverse("followups:list") + back)


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
    reply_form=None,
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
            "history": followup_context(followup, user=request.user),
            "followup": followup,
            "customer": followup.customer,
            "response": followup.response,
            "extra_answers": extra_answers,
            "events": events,
            "note_form": note_form or NoteForm(),
            "resolve_form": resolve_form or ResolveForm(),
            "contact_form": contact_form or ContactForm(),
            "status_form": StatusNoteForm(),
            **_reply_context(request, followup, reply_form),
        },
        status=status,
    )


def _reply_context(request, followup, form=None) -> dict:
    """What templates/followups/_reply.html draws: the form, or why there is none."""
    context = {"messages_exchanged": followup.messages.select_related("created_by")}
    if not followup.is_unresolved:
        return context
    refusal = replies.reply_refusal(followup.customer)
    if form is None and not refusal:
        subject, body = replies.followup_reply_draft(
            followup=followup, actor=request.user
        )
        form = ReplyForm(initial={"subject": subject, "body": body})
    return {**context, "reply_form": form, "reply_refusal": refusal}


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


def _form_act(request, pk: int, form_class, form_name: str, action, success: str):
    """
    Runs a follow-up's action with a form's cleaned data (action(followup, data)),
    then back to its page with `success`; a refusal about the follow-up itself is
    a message there, one about what was typed is the form again, with a 400.
    """
    followup = _get_followup_for_user(request, pk)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            action(followup, form.cleaned_data)
        except ValidationError as e:
            if not hasattr(e, "error_dict"):
                # About the follow-up (moved on meanwhile), not what was typed.
                messages.error(request, " ".join(e.messages))
                return redirect(followup)
            form.add_error(None, e)
        else:
            messages.success(request, success)
            return redirect(followup)
    return _detail(request, followup, status=400, **{form_name: form})


@require_POST
@cx_staff_required
def followup_resolve(request, pk: int):
    return _form_act(
        request,
        pk,
        ResolveForm,
        "resolve_form",
        lambda followup, data: services.followup_resolve(
            followup=followup,
            actor=request.user,
            resolution=data["resolution"],
            root_cause=data["root_cause"],
        ),
        _("Resolved. Thank you for closing the loop."),
    )


@require_POST
@cx_staff_required
def followup_reply(request, pk: int):
    return _form_act(
        request,
        pk,
        ReplyForm,
        "reply_form",
        lambda followup, data: replies.followup_reply_send(
            followup=followup,
            actor=request.user,
            subject=data["subject"],
            body=data["body"],
        ),
        _("Your email to the customer is on its way."),
    )


@csrf_exempt  # the token in the address is the credential; no cookie is involved
@require_http_methods(["GET", "HEAD", "POST"])
def checkin(request, token: str):
    """
    The customer's "Did we resolve your issue?" page: GET shows the question
    (mail scanners follow links: it records nothing), POST records the answer.
    """
    checkin = replies.checkin_open(token=token)
    if checkin is None:
        # Only misses count: a link that exists is served from any address.
        if (wait := token_miss(request)) is not None:
            response = customer_page(
                request, "429.html", {"limit": "token-miss"}, status=429
            )
            response["Retry-After"] = str(wait)
            return response
        return customer_page(request, "followups/checkin_unknown.html", {}, status=404)
    followup = checkin.followup
    language = followup.customer.locale
    status = 200
    error = ""
    if request.method == "POST":
        answer = request.POST.get("answer")
        if answer not in ("yes", "no"):
            with translation.override(language):
                error = _("Choose yes or no.")
            status = 400
        else:
            try:
                with translation.override(language):
                    followup = replies.followup_checkin_answer(
                        checkin=checkin, recovered=answer == "yes"
                    )
            except ValidationError as e:
                error = " ".join(e.messages)
                status = 409
            else:
                return redirect(request.path + "?answered=1")
    return customer_page(
        request,
        "followups/checkin.html",
        {
            "followup": followup,
            "customer": followup.customer,
            "answered": followup.recovered is not None,
            "thanks": request.GET.get("answered") == "1",
            "changeable": replies.checkin_changeable(followup),
            "chosen": request.GET.get("answer"),
            "error": error,
        },
        status=status,
        language=language,
    )


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


@cx_staff_required
def home(request):
    """`/`: redirects to the signed-in user's start page (preferences.start_url_for)."""
    profile = preferences.staff_profile_of(request.user)
    return redirect(preferences.start_url_for(request.user, profile.start_page))


@require_http_methods(["GET", "POST"])
@cx_staff_required
def preferences_page(request):
    """The signed-in user's preferences: language, time zone and start page."""
    profile = preferences.staff_profile_of(request.user)
    if request.method == "POST":
        form = PreferencesForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                profile = services.staff_profile_save(
                    user=request.user, **form.cleaned_data
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    for message in errors:
                        form.add_error(field, message)
            else:
                preferences.remember_preferences(request, profile)
                # This response already speaks the language the user chose.
                translation.activate(
                    profile.language or translation.get_language_from_request(request)
                )
                messages.success(request, _("Your preferences are saved."))
                return redirect("preferences")
    else:
        form = PreferencesForm(
            initial={
                "language": profile.language,
                "time_zone": profile.time_zone,
                "start_page": profile.start_page,
            },
            user=request.user,
        )
    return render(
        request,
        "followups/preferences.html",
        {"form": form},
        status=400 if form.is_bound else 200,
    )
