"""Who is CX staff: the one rule the staff pages, the dashboard and the API share."""

import re
from functools import wraps

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from rest_framework.permissions import SAFE_METHODS, BasePermission


def _cx_groups() -> set[str]:
    return {settings.FOLLOWUP_AGENTS_GROUP, settings.FOLLOWUP_MANAGERS_GROUP}


def is_cx_staff(user) -> bool:
    """True for active staff and members of the CX agents or CX managers groups."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    return user.groups.filter(name__in=_cx_groups()).exists()


def cx_staff_users():
    """The users is_cx_staff() is true for, as a queryset."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(is_staff=True) | Q(groups__name__in=_cx_groups()))
        .distinct()
    )


def _required(test):
    """A view decorator: anonymous visitors log in first; others failing `test`: 403."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not test(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# The follow-up pages and the dashboard: CX agents and managers, and staff.
cx_staff_required = _required(is_cx_staff)
# What only staff accounts see, such as every email sent (with customers' links).
staff_required = _required(lambda user: user.is_active and user.is_staff)


def customer_for_user(user, pk):
    """
    Returns customer `pk` if `user` may see their page and timeline, else raises
    Http404 (PermissionDenied for anyone who is no CX staff). Staff and managers
    (followups.selectors.may_see_reports) see every customer; a CX agent the
    customers of the follow-ups they see, or every one with the setting
    CUSTOMER_PAGES_ALL_AGENTS. The one rule of the customer page and its API.
    """
    # Imported here: the follow-ups app imports this module.
    from cxm.customers.models import Customer
    from cxm.followups.selectors import followups_visible_to, may_see_reports

    if not is_cx_staff(user):
        raise PermissionDenied
    # An id from a URL: anything but a number the column holds names no customer.
    if not re.fullmatch(r"[0-9]{1,19}", str(pk)) or int(pk) >= 2**63:
        raise Http404("No customer matches the given query.")
    customers = Customer.objects.filter(pk=int(pk))
    if not (settings.CUSTOMER_PAGES_ALL_AGENTS or may_see_reports(user)):
        customers = customers.filter(
            Exists(followups_visible_to(user).filter(customer=OuterRef("pk")))
        )
    customer = customers.first()
    if customer is None:
        raise Http404("No customer matches the given query.")
    return customer


class IsCxStaff(BasePermission):
    """
    The API: CX agents and managers read everything and change what they work on
    (views with `cx_agents_may_write = True`, the follow-ups); staff accounts change
    everything (customers, surveys, campaigns).
    """

    def has_permission(self, request, view):
        if not is_cx_staff(request.user):
            return False
        return (
            request.method in SAFE_METHODS
            or request.user.is_staff
            or getattr(view, "cx_agents_may_write", False)
        )
