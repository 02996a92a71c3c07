from django.db.models import QuerySet

from cxm.access import is_cx_staff

from .models import FollowUp


def followups_visible_to(user) -> QuerySet:
    """Returns the follow-ups `user` may see: all for CX staff, none for anyone else."""
    if not is_cx_staff(user):
        return FollowUp.objects.none()
    return FollowUp.objects.select_related(
        "owner",
        "resolved_by",
        "response__customer",
        "response__campaign",
        "response__survey",
    )


def followups_filter(
    qs: QuerySet, *, status: str = "", owner: str = "", overdue: bool | None = None
) -> QuerySet:
    """Returns qs narrowed by status, owner (a user id, or "none") and overdue."""
    if status:
        qs = qs.filter(status=status)
    if owner == "none":
        qs = qs.filter(owner__isnull=True)
    elif owner:
        qs = qs.filter(owner_id=owner)
    if overdue is True:
        qs = qs.overdue()
    elif overdue is False:
        qs = qs.exclude(pk__in=FollowUp.objects.overdue().values("pk"))
    return qs.order_by("due_at", "pk")
