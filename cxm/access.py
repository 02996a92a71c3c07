"""Who is CX staff: the one rule the staff pages, the dashboard and the API share."""

from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from rest_framework.permissions import BasePermission


def is_cx_staff(user) -> bool:
    """True for active staff and members of the CX agents or CX managers groups."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    groups = {settings.FOLLOWUP_AGENTS_GROUP, settings.FOLLOWUP_MANAGERS_GROUP}
    return user.groups.filter(name__in=groups).exists()


def cx_staff_users():
    """The users is_cx_staff() is true for, as a queryset."""
    groups = {settings.FOLLOWUP_AGENTS_GROUP, settings.FOLLOWUP_MANAGERS_GROUP}
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name__in=groups))
        .distinct()
    )


def cx_staff_required(view):
    """Sends anonymous visitors to the login page and refuses other non-staff (403)."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_cx_staff(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


class IsCxStaff(BasePermission):
    def has_permission(self, request, view):
        return is_cx_staff(request.user)
