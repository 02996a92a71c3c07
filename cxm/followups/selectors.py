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
from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Least
from django.http import Http404
from django.utils import timezone

from cxm.access import cx_staff_users, is_cx_staff
from cxm.customers.models import Interaction
from surveys.models import Response, ResponseRevision

from .models import FollowUp, Priority, Team, overdue_q


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


def teams_visible_to(user) -> QuerySet:
    """The teams whose follow-ups `user` sees: all for staff, else their own."""
    if not is_cx_staff(user):
        return Team.objects.none()
    if user.is_staff:
        return Team.objects.all()
    return teams_of(user)


def may_reassign(user) -> bool:
    """
    True if `user` gives follow-ups to others somewhere: staff, the CX managers
    group, a team's manager. Which ones is still services.is_manager_of's to say,
    per follow-up; this only decides whether the queue offers it.
    """
    if not is_cx_staff(user):
        return False
    return (
        user.is_staff
        or user.groups.filter(name=settings.FOLLOWUP_MANAGERS_GROUP).exists()
        or Team.objects.filter(manager=user).exists()
    )


def followup_owner_choices(user) -> QuerySet:
    """
    The people `user`'s queue offers as owners: CX staff in their teams (as member
    or manager) and the CX agents, who work the follow-ups without a team; every
    CX staff user for staff. Read from the teams and groups, never the follow-ups.
    """
    people = cx_staff_users()
    if not is_cx_staff(user):
        return people.none()
    if not user.is_staff:
        teams = teams_of(user).values("pk")
        people = people.filter(
            Q(followup_team_memberships__team__in=teams)
            | Q(managed_followup_teams__in=teams)
            | Q(groups__name=settings.FOLLOWUP_AGENTS_GROUP)
            | Q(pk=user.pk)
        )
    return people.order_by("username")


def next_due_at():
    """
    The follow-up's next deadline: the first contact's while nobody has contacted
    the customer, else the resolution's. Unresolved and past it is overdue_q.
    """
    first_contact = Case(
        When(first_contact_at__isnull=True, then=F("first_contact_due_at"))
    )
    return Least(F("due_at"), Coalesce(first_contact, F("due_at")))


def _is_agent(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and not user.is_staff
        and user.groups.filter(name=settings.FOLLOWUP_AGENTS_GROUP).exists()
    )


def followups_queue_order(qs: QuerySet, *, user=None, now=None) -> QuerySet:
    """
    Returns qs in the queue's order: for an agent their own first; then overdue,
    then high priority, each soonest due first.
    """
    now = now or timezone.now()
    keys = []
    if _is_agent(user):
        keys.append(Case(When(owner_id=user.pk, then=Value(0)), default=Value(1)))
    keys += [
        Case(When(overdue_q(now), then=Value(0)), default=Value(1)),
        Case(When(priority=Priority.HIGH, then=Value(0)), default=Value(1)),
        next_due_at(),
        "pk",
    ]
    return qs.order_by(*keys)


def followups_by_ids(qs: QuerySet, pks) -> list[FollowUp]:
    """
    Returns the follow-ups `pks` from qs, in the order of `pks`. The queue sorts
    and pages the ids alone, then loads these few rows with their joins: sorting
    the joined rows of every unresolved follow-up costs ten times more.
    """
    pks = list(pks)
    rows = qs.order_by().in_bulk(pks)
    return [rows[pk] for pk in pks if pk in rows]


# How much of the customer's history the follow-up page shows: the latest few of
# each list, so the page costs the same for a customer with years of it.
CONTEXT_LIMIT = 10


def followup_context(followup: FollowUp, *, user, limit: int = CONTEXT_LIMIT) -> dict:
    """
    Returns what the agent reads before calling the customer: their latest answers
    (with earlier versions of a changed one), their other follow-ups `user` may
    see, and their latest interactions; `limit` of each, in a fixed number of
    queries.
    """
    customer_id = followup.customer_id
    answers = list(
        Response.objects.filter(customer_id=customer_id)
        .select_related("survey", "campaign")
        .prefetch_related(
            Prefetch(
                "revisions",
                queryset=ResponseRevision.objects.order_by("-replaced_at", "-pk"),
            )
        )
        .order_by("-created_at", "-pk")[:limit]
    )
    others = list(
        followups_visible_to(user)
        .filter(customer_id=customer_id)
        .exclude(pk=followup.pk)
        .order_by("-created_at", "-pk")[:limit]
    )
    interactions = list(
        Interaction.objects.filter(customer_id=customer_id).order_by(
            "-occurred_at", "-pk"
        )[:limit]
    )
    return {
        "answers": answers,
        "other_followups": others,
        "interactions": interactions,
        "limit": limit,
    }


def recovery_rate(queryset: QuerySet) -> dict:
    """
    Returns the recovery check-ins of the follow-ups in `queryset` the customers
    answered, how many said yes (recovered), and that share (0–1, None without
    an answer): one query.
    """
    counts = queryset.aggregate(
        answered=Count("pk", filter=Q(recovered__isnull=False)),
        recovered=Count("pk", filter=Q(recovered=True)),
    )
    answered = counts["answered"]
    return {
        "answered": answered,
        "recovered": counts["recovered"],
        "rate": counts["recovered"] / answered if answered else None,
    }


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
