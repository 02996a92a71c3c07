"""
django-anymail's webhook URLs (/anymail/<service>/tracking/ …), each refused with
a 403 while ANYMAIL_WEBHOOK_SECRET is unset: anymail itself would then take any
POST to the services that do not sign their webhooks, and an event suppresses a
customer. A service that signs them (Mailgun) has its signature checked too.
"""

from functools import wraps

from anymail import urls
from anymail.utils import get_anymail_setting
from django.http import HttpResponseForbidden
from django.urls import URLPattern


def _secret_required(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not get_anymail_setting("webhook_secret", default=None):
            return HttpResponseForbidden("Webhooks are off: no ANYMAIL_WEBHOOK_SECRET.")
        return view(request, *args, **kwargs)

    return guarded


app_name = urls.app_name
urlpatterns = [
    URLPattern(p.pattern, _secret_required(p.callback), p.default_args, p.name)
    for p in urls.urlpatterns
]
