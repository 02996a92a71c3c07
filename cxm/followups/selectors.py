"""
Reads of follow-ups, and who may see them: the roles.

- Staff accounts see every follow-up.
- CX agents and managers see the follow-ups of the teams they are in (as a member
  or as its manager), and those without a team (legacy ones, and rules that name
  no team), which every CX agent and manager works as before teams existed.
- Anyone else sees nothing.

What a user may do on a follow-up they see: work it (contact, note, take, move
its status, resolve); give it to someone else only if they manage it
(services.is_manager_of).
"""

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404

from cxm.access import is_cx_staff

from .models import FollowUp, Team, overdue_q


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


# The most follow-ups a digest lists; it counts them all.
DIGEST_LIST_MAX = 50


def followups_digest(user, *, now, due_soon) -> dict:
    """
    Returns what `user`'s daily digest says: their unresolved follow-ups and
    their teams' that nobody owns, as counts (total, overdue, due before
    `due_soon`) and the first DIGEST_LIST_MAX of them, overdue first, then by due
    time. Two queries.
    """
    qs = followups_visible_to(user).filter(
        Q(owner=user) | Q(owner__isnull=True, team__in=teams_of(user).values("pk"))
    )
    qs = qs.unresolved()
    soon = Q(due_at__lte=due_soon) | Q(
        first_contact_at__isnull=True, first_contact_due_at__lte=due_soon
    )
    overdue = overdue_q(now)
    counts = qs.aggregate(
        total=Count("pk"),
        overdue=Count("pk", filter=overdue),
        due_soon=Count("pk", filter=soon & ~overdue),
    )
    followups = list(
        qs.annotate(
            late=Case(
                When(overdue, then=Value(0)),
                When(soon, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        ).order_by("late", "due_at", "pk")[:DIGEST_LIST_MAX]
    )
    return {**counts, "followups": followups, "more": counts["total"] - len(followups)}
