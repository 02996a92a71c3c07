"""
A staff member's preferences (StaffProfile): where they land, the language and
the time zone their pages are drawn in.

The language and time zone are copied into the session when they log in or save
their preferences, so that cxm.middleware.PreferencesMiddleware activates them on
every page without a query of its own.
"""

import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.urls import reverse

from cxm.middleware import PreferencesMiddleware

from .models import StaffProfile, StartPage
from .selectors import may_see_reports

SESSION_LANGUAGE = PreferencesMiddleware.LANGUAGE
SESSION_TIME_ZONE = PreferencesMiddleware.TIME_ZONE


@cache
def time_zone_names() -> tuple[str, ...]:
    """Returns the IANA time zone names this machine knows, sorted."""
    return tuple(sorted(zoneinfo.available_timezones()))


def is_time_zone(name: str) -> bool:
    """True if `name` is a time zone this machine knows (blank is not one)."""
    return name in time_zone_names()


def staff_profile_of(user) -> StaffProfile:
    """Returns `user`'s StaffProfile, or an unsaved blank one (one query)."""
    return StaffProfile.objects.filter(user_id=user.pk).first() or StaffProfile(
        user=user
    )


def start_pages_for(user) -> list[tuple[str, str]]:
    """Returns the start page choices `user` may pick: reports, the outbox and
    the admin only for those who may open them."""
    hidden = set()
    if not may_see_reports(user):
        hidden.add(StartPage.REPORTS)
    if not user.is_staff:
        hidden |= {StartPage.OUTBOX, StartPage.ADMIN}
    return [(value, label) for value, label in StartPage.choices if value not in hidden]


def _is_agent(user) -> bool:
    return user.groups.filter(name=settings.FOLLOWUP_AGENTS_GROUP).exists()


def start_url_for(user, start_page: str = "") -> str:
    """
    Returns the URL `user` lands on at `/`: the start page they chose if they may
    open it, else by role: agents their own queue, managers the dashboard, staff
    accounts and anyone else the whole queue. The one rule of the landing.
    """
    urls = {
        StartPage.MY_QUEUE: f"{reverse('followups:list')}?owner={user.pk}",
        StartPage.QUEUE: reverse("followups:list"),
        StartPage.DASHBOARD: reverse("surveys:dashboard"),
        StartPage.REPORTS: reverse("followups:reports"),
        StartPage.RESPONSES: reverse("surveys:responses"),
        StartPage.JOURNEYS: reverse("journeys:list"),
        StartPage.OUTBOX: reverse("outbox:list"),
        StartPage.ADMIN: reverse("admin:index"),
    }
    if start_page in urls and start_page in dict(start_pages_for(user)):
        return urls[start_page]
    if user.is_staff:
        return urls[StartPage.QUEUE]
    if may_see_reports(user):
        return urls[StartPage.DASHBOARD]
    if _is_agent(user):
        return urls[StartPage.MY_QUEUE]
    return urls[StartPage.QUEUE]


def remember_preferences(request, profile: StaffProfile) -> None:
    """Copies `profile`'s language and time zone into the request's session."""
    for key, value in (
        (SESSION_LANGUAGE, profile.language),
        (SESSION_TIME_ZONE, profile.time_zone),
    ):
        if value:
            request.session[key] = value
        else:
            request.session.pop(key, None)


@receiver(user_logged_in, dispatch_uid="followups.preferences")
def on_logged_in(sender, request, user, **kwargs):
    if request is not None and hasattr(request, "session"):
        remember_preferences(request, staff_profile_of(user))
