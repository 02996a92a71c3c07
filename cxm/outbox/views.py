import re

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp, csp_update
from django import forms
from django.apps import apps
from django.core.paginator import Paginator
from django.db.models import Exists, OuterRef, Subquery
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from cxm.access import staff_required

from .models import OutboxEmail

# What an email's frame may do; its <iframe> says the same in its sandbox attribute.
EMAIL_SANDBOX = [
    "allow-popups",
    "allow-popups-to-escape-sandbox",
    "allow-top-navigation-by-user-activation",
]
HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


# The emails cxm sends, by their template name (cxm.emails).
KINDS = [
    ("invitation", _("Invitation")),
    ("reminder", _("Reminder")),
    ("followup-assigned", _("Follow-up assigned")),
    ("followup-escalated", _("Follow-up escalated")),
]


class OutboxSearchForm(forms.Form):
    q = forms.CharField(label=_("Recipient"), required=False, max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("All")), *KINDS]


def _answered():
    """Whether the email's invitation is answered, as a subquery. The outbox is the
    project's, not the surveys app's: the model is looked up, not imported."""
    invitation = apps.get_model("surveys", "Invitation")
    return Exists(
        invitation.objects.filter(
            pk=OuterRef("invitation_id"), answered_at__isnull=False
        )
    )


def _customer_id():
    """The customer of the email's invitation (None for other emails), as a subquery."""
    invitation = apps.get_model("surveys", "Invitation")
    return Subquery(
        invitation.objects.filter(pk=OuterRef("invitation_id")).values("customer_id")[
            :1
        ]
    )


@staff_required
def outbox_list(request):
    """The stored emails, newest first; searched by recipient and kind, with the
    invitations that were answered marked."""
    form = OutboxSearchForm(request.GET or None)
    emails = OutboxEmail.objects.defer("body_text", "body_html", "headers")
    if form.is_valid():
        if form.cleaned_data["q"]:
            emails = emails.filter(to__icontains=form.cleaned_data["q"].strip())
        if form.cleaned_data["kind"]:
            emails = emails.filter(kind=form.cleaned_data["kind"])
    emails = emails.annotate(answered=_answered(), customer_id=_customer_id())
    page = Paginator(emails, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "outbox/list.html",
        {"page": page, "form": form, "query": query.urlencode()},
    )


@csp_update({"frame-src": [SELF]})
@staff_required
def outbox_detail(request, pk: int):
    email = get_object_or_404(
        OutboxEmail.objects.annotate(customer_id=_customer_id()), pk=pk
    )
    return render(
        request,
        "outbox/detail.html",
        {"email": email, "sandbox": " ".join(EMAIL_SANDBOX)},
    )


# The email's own policy, in place of the site's: an email's inline styles (a
# srcdoc frame would take the staff page's policy, which forbids them), its images
# (the logo is on the site), no script, and a sandbox even when opened on its own.
@csp(
    {
        "default-src": [NONE],
        "style-src": [UNSAFE_INLINE],
        "img-src": [SELF, "https:", "data:"],
        "frame-ancestors": [SELF],
        "form-action": [NONE],
        "sandbox": EMAIL_SANDBOX,
    }
)
@xframe_options_sameorigin
@staff_required
def outbox_html(request, pk: int):
    """Returns an email's HTML part as a page of its own, which outbox_detail
    frames; its links open in a new tab."""
    email = get_object_or_404(OutboxEmail, pk=pk)
    base = '<base target="_blank">'
    html, found = HEAD.subn(lambda m: m.group(0) + base, email.body_html, count=1)
    return HttpResponse(
        html if found else base + html, content_type="text/html; charset=utf-8"
    )
