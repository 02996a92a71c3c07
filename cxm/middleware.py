"""
A logged-in staff member's language and time zone, activated for their pages.

Response headers every page gets: which browser features it may use, and that a
page nobody marked cacheable is never stored (most pages show a customer's data).

The Content-Security-Policy is django-csp's: CONTENT_SECURITY_POLICY in settings.
"""

import zoneinfo

from django.conf import settings
from django.utils import timezone, translation

# Browser features no cxm page uses, off for the page and every frame in it. Names
# Chromium knows (an unknown one is a console warning on every page).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


class SecurityHeadersMiddleware:
    """
    Adds Permissions-Policy to every response, and `Cache-Control: no-store` to
    every response whose view said nothing about caching: the answer pages, the
    staff pages and the API all show a customer's data, and a new view is private
    until it says otherwise (brand.css and the static files say public).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if "Cache-Control" not in response.headers:
            response["Cache-Control"] = "no-store"
        return response


class PreferencesMiddleware:
    """
    Draws a logged-in user's pages in the language and time zone of their
    preferences (StaffProfile), which their session holds since they logged in
    or saved them (cxm.followups.preferences): no query of its own. After
    LocaleMiddleware, whose browser-language choice it overrides, and after the
    sessions.
    """

    # The session keys cxm.followups.preferences writes.
    LANGUAGE = "cxm_language"
    TIME_ZONE = "cxm_time_zone"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is None:
            return self.get_response(request)
        language = session.get(self.LANGUAGE)
        if language in dict(settings.LANGUAGES):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        zone = _zone(session.get(self.TIME_ZONE))
        if zone is None:
            return self.get_response(request)
        timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


def _zone(name) -> zoneinfo.ZoneInfo | None:
    """Returns the time zone called `name`, or None for none or an unknown name."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
