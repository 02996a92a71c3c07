"""
Reads of follow-ups, and who may see them: the roles.

- Staff accounts see every follow-up.
- CX agents and managers see the follow-ups of the teams they are in (as a member
  or as its manager), and those without a team (legacy ones, and rules that name
  no team), which every CX agent and manager works as before teams existed.
- Anyone else sees nothing.

What a user may do on a follow-up they see: work it (contact, note, take, move
its status, resolve); give it to someone else only if they manage it
(services.is_manager_of). Who may read the reports: managers and staff accounts
(may_see_reports), each over the follow-ups they may see.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404

from cxm.access import is_cx_staff

from .models import FollowUp, Team


def teams_of(user) -> QuerySet:
    """The teams `user` is in, as a member or as its manager."""
    return Team.objects.filter(Q(memberships__user=user) | Q(manager=user)).distinct()


def followups_visible_to(user) -> QuerySet:
    """Returns the follow-ups `user` may see and work (see the module's note)."""
    if not is_cx_staff(user):
        return FollowUp.objects.none()
    qs = FollowUp.objects.select_related(
        "owner",
        "team",
        "resolved_by",
        "root_cause",
        "customer",
        "response__customer",
        "response__campaign",
        "response__survey",
    )
    if user.is_staff:
        return qs
    teams = Team.objects.filter(Q(memberships__user=user) | Q(manager=user))
    return qs.filter(Q(team__isnull=True) | Q(team__in=teams.values("pk")))


def may_see_reports(user) -> bool:
    """
    True for staff accounts and for CX staff who manage: members of the CX
    managers group, or a team's manager. Agents work follow-ups, not reports.
    One query at most, as every staff page's navigation asks.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_staff:
        return True
    managers = settings.FOLLOWUP_MANAGERS_GROUP
    # One join on the groups: a CX group of the user's, and the managers group
    # or a team they manage.
    return (
        get_user_model()
        .objects.filter(pk=user.pk)
        .filter(
            Q(groups__name__in=[settings.FOLLOWUP_AGENTS_GROUP, managers])
            & (Q(groups__name=managers) | Q(managed_followup_teams__isnull=False))
        )
        .exists()
    )


def report_teams_for(user) -> QuerySet:
    """The teams whose reports `user` may filter by: all for staff, else theirs."""
    if user.is_staff:
        return Team.objects.order_by("name")
    return teams_of(user).order_by("name")


def followup_for_user(user, pk) -> FollowUp:
    """Returns follow-up `pk` if `user` may see it, else raises Http404."""
    followup = followups_visible_to(user).filter(pk=pk).first()
    if followup is None:
        raise Http404("No follow-up matches the given query.")
    return followup


def followups_filter(
    qs: QuerySet,
    *,
    status: str = "",
    owner: str = "",
    overdue: bool | None = None,
    team: str = "",
    now=None,
) -> QuerySet:
    """
    Returns qs narrowed by status ("unresolved" for the three open ones), owner
    (a user id, or "none"), team (an id, or "none") and overdue, soonest due first.
    """
    if status == "unresolved":
        qs = qs.unresolved()
    elif status:
        qs = qs.filter(status=status)
    if owner == "none":
        qs = qs.filter(owner__isnull=True)
    elif owner:
        qs = qs.filter(owner_id=owner)
    if team == "none":
        qs = qs.filter(team__isnull=True)
    elif team:
        qs = qs.filter(team_id=team)
    if overdue is True:
        qs = qs.overdue(now)
    elif overdue is False:
        qs = qs.not_overdue(now)
    return qs.order_by("due_at", "pk")
