from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import cache_control

from cxm.access import is_cx_staff


def customer_page(request, template, context, *, status=200, language=None):
    """
    Renders a customer's page (survey answer, unsubscribe, check-in) in the
    customer's language, or the browser's, and says so in Content-Language.
    """
    language = language or translation.get_language()
    with translation.override(language):
        response = render(
            request, template, {"language": language, **context}, status=status
        )
    response["Content-Language"] = language
    return response


def _error_page(request, template: str, status: int):
    """
    Renders an error page in the visitor's language: in the staff pages' layout
    (with their navigation) for CX staff, else in the customers' public layout.
    """
    user = getattr(request, "user", None)
    layout = "base.html" if user is not None and is_cx_staff(user) else "public.html"
    return render(request, template, {"layout": layout}, status=status)


def not_found(request, exception=None):
    """handler404: the friendly 404 page."""
    return _error_page(request, "404.html", 404)


def permission_denied(request, exception=None):
    """handler403: the friendly 403 page."""
    return _error_page(request, "403.html", 403)


def login_locked_out(request, original_response=None, credentials=None):
    """
    AXES_LOCKOUT_CALLABLE: the page of a login refused after too many failures (for
    the staff login and the admin's), in the visitor's language, with a 429.
    """
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    response = render(
        request,
        "registration/locked.html",
        {"minutes": minutes, "login_url": request.get_full_path()},
        status=429,
    )
    response["Retry-After"] = str(minutes * 60)
    return response


@cache_control(max_age=3600, public=True)
def brand_css(request):
    """The brand colour from settings as CSS variables: pages carry no inline style."""
    css = (
        f":root {{ --brand: {settings.BRAND_COLOR}; "
        f"--brand-ink: {settings.BRAND_TEXT_COLOR}; }}\n"
    )
    return HttpResponse(css, content_type="text/css; charset=utf-8")
