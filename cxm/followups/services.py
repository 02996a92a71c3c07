import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from cxm import emails
from cxm.access import is_cx_staff
from surveys.models import NpsBucket, Response, nps_bucket

from .models import (
    EventKind,
    FollowUp,
    FollowUpEvent,
    FollowUpStatus,
    Priority,
    RootCause,
)

logger = logging.getLogger(__name__)
User = get_user_model()

# Follow-ups one sweep handles per step; the next sweep takes the rest.
SWEEP_BATCH = 500
# An owner email not sent this long after assignment lost its message: resend.
NOTIFY_GRACE = timedelta(minutes=2)
# Key of the PostgreSQL advisory lock that makes round-robin choices one at a time.
ROUND_ROBIN_LOCK = 0x6378_6D01


def followup_due_at(opened_at: datetime) -> datetime:
    """Returns when a follow-up opened at `opened_at` is due under the SLA."""
    return opened_at + timedelta(hours=settings.FOLLOWUP_SLA_HOURS)


def followup_priority(score: int) -> str:
    """Returns the priority of a detractor's follow-up: the angrier, the higher."""
    return Priority.HIGH if score <= 3 else Priority.NORMAL


def _event(
    followup: FollowUp,
    kind: str,
    *,
    actor=None,
    text: str = "",
    data: dict | None = None,
    now=None,
):
    return FollowUpEvent.objects.create(
        followup=followup,
        kind=kind,
        actor=actor,
        text=text,
        data=data or {},
        created_at=now or timezone.now(),
    )


def agents():
    return User.objects.filter(
        is_active=True, groups__name=settings.FOLLOWUP_AGENTS_GROUP
    )


def followup_owner_next():
    """Returns the CX agent assigned least recently (round-robin), or None."""
    if connection.vendor == "postgresql":
        # Two detractors answering at once must not both pick the same agent.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROUND_ROBIN_LOCK])
    return (
        agents()
        .annotate(last_assigned=Max("followups__assigned_at"))
        .order_by(F("last_assigned").asc(nulls_first=True), "pk")
        .first()
    )


def followup_open(*, response: Response) -> FollowUp | None:
    """
    Opens the follow-up of a detractor's response, once; returns it, or None for a
    passive or promoter. Call inside the transaction that records the response.
    """
    if nps_bucket(response.score) != NpsBucket.DETRACTOR:
        return None
    if existing := FollowUp.objects.filter(response=response).first():
        return existing
    now = timezone.now()
    with transaction.atomic():
        owner = followup_owner_next()
        followup = FollowUp.objects.create(
            response=response,
            owner=owner,
            priority=followup_priority(response.score),
            due_at=followup_due_at(now),
            created_at=now,
            assigned_at=now if owner else None,
        )
        _event(
            followup,
            EventKind.OPENED,
            now=now,
            data={"score": response.score},
        )
        if owner:
            _event(followup, EventKind.ASSIGNED, now=now, text=owner.get_username())
            _notify_owner_on_commit(followup)
    return followup


def on_response_recorded(
    sender, *, response: Response, created: bool, **kwargs
) -> None:
    """Opens a follow-up for a detractor; notes a changed answer on an open one."""
    followup = FollowUp.objects.filter(response=response).first()
    if followup is None:
        followup_open(response=response)
    elif not created:
        _event(
            followup,
            EventKind.ANSWER_CHANGED,
            text=response.comment,
            data={"score": response.score},
        )
        # An angrier second answer raises the priority; a kinder one never lowers it.
        if followup_priority(response.score) == Priority.HIGH:
            try:
                followup_set_priority(
                    followup=followup, priority=Priority.HIGH, actor=None
                )
            except ValidationError:
                pass  # resolved: its priority is history, the answer still counts


def _notify_owner_on_commit(followup: FollowUp) -> None:
    from . import tasks

    pk = followup.pk
    # robust: a broker that is down must not fail the request; the sweep resends.
    transaction.on_commit(lambda: tasks.followup_notify_owner.delay(pk), robust=True)


def followup_owner_validate(owner) -> None:
    """Raises ValidationError unless `owner` can own follow-ups."""
    if not owner.is_active:
        raise ValidationError({"owner": _("This user is not active.")})
    if not is_cx_staff(owner):
        raise ValidationError({"owner": _("This user is not CX staff.")})


def followup_assign(*, followup: FollowUp, owner, actor) -> FollowUp:
    """Gives the follow-up to `owner`, who is emailed unless they took it themselves."""
    if owner is not None:
        followup_owner_validate(owner)
    now = timezone.now()
    with transaction.atomic():
        followup = FollowUp.objects.select_for_update(of=("self",)).get(pk=followup.pk)
        # Checked on the locked row: the caller's copy may predate a resolve.
        if followup.status == FollowUpStatus.RESOLVED:
            raise ValidationError(_("This follow-up is resolved."))
        if followup.owner_id == (owner.pk if owner else None):
            return followup
        followup.owner = owner
        followup.assigned_at = now if owner else None
        followup.owner_notified_at = now if owner == actor else None
        followup.save(update_fields=["owner", "assigned_at", "owner_notified_at"])
        _event(
            followup,
            EventKind.ASSIGNED,
            actor=actor,
            now=now,
            text=owner.get_username() if owner else "",
        )
        if owner and owner != actor:
            _notify_owner_on_commit(followup)
    return followup


def followup_set_priority(*, followup: FollowUp, priority: str, actor) -> FollowUp:
    """Changes the priority of an unresolved follow-up, on its timeline."""
    if priority not in Priority.values:
        raise ValidationError({"priority": _("Choose a priority.")})
    with transaction.atomic():
        followup = FollowUp.objects.select_for_update(of=("self",)).get(pk=followup.pk)
        if followup.status == FollowUpStatus.RESOLVED:
            raise ValidationError(_("This follow-up is resolved."))
        if followup.priority == priority:
            return followup
        followup.priority = priority
        followup.save(update_fields=["priority"])
        _event(
            followup,
            EventKind.PRIORITY_CHANGED,
            actor=actor,
            data={"priority": priority},
        )
    return followup


def followup_add_note(*, followup: FollowUp, actor, text: str) -> FollowUpEvent:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"note": _("Write the note first.")})
    return _event(followup, EventKind.NOTE, actor=actor, text=text)


def followup_resolve(*, followup: FollowUp, actor, resolution: str, root_cause: str):
    """Resolves the follow-up, recording who, when, how and the root cause."""
    resolution = (resolution or "").strip()
    errors = {}
    if not resolution:
        errors["resolution"] = _("Say how it was resolved.")
    if root_cause not in RootCause.values:
        errors["root_cause"] = _("Choose a root cause.")
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    with transaction.atomic():
        followup = FollowUp.objects.select_for_update(of=("self",)).get(pk=followup.pk)
        if followup.status == FollowUpStatus.RESOLVED:
            raise ValidationError(_("This follow-up is already resolved."))
        followup.status = FollowUpStatus.RESOLVED
        followup.resolution = resolution
        followup.root_cause = root_cause
        followup.resolved_at = now
        followup.resolved_by = actor
        followup.save(
            update_fields=[
                "status",
                "resolution",
                "root_cause",
                "resolved_at",
                "resolved_by",
            ]
        )
        _event(followup, EventKind.RESOLVED, actor=actor, now=now, text=resolution)
    return followup


def _claim(pk: int, **conditions) -> FollowUp | None:
    """Locks and returns the follow-up if it still meets the conditions, else None."""
    return (
        FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("owner", "response__invitation__customer")
        .filter(pk=pk, **conditions)
        .first()
    )


def followup_owner_notify(*, followup_id: int) -> bool:
    """Emails the owner about their new follow-up, once; returns whether it sent."""
    with transaction.atomic():
        followup = _claim(
            followup_id,
            owner__isnull=False,
            owner__is_active=True,
            owner_notified_at__isnull=True,
        )
        if followup is None:
            return False
        if followup.owner.email:
            emails.send(
                "followup-assigned",
                to=[followup.owner.email],
                context={"followup": followup},
            )
        followup.owner_notified_at = timezone.now()
        followup.save(update_fields=["owner_notified_at"])
        _event(followup, EventKind.OWNER_NOTIFIED, text=followup.owner.email)
    return True


def managers_emails() -> list[str]:
    return list(
        User.objects.filter(
            is_active=True, groups__name=settings.FOLLOWUP_MANAGERS_GROUP
        )
        .exclude(email="")
        .order_by("pk")
        .values_list("email", flat=True)
    )


def followup_escalate(*, followup_id: int) -> bool:
    """Emails the CX managers about an overdue follow-up, once; True if it did."""
    with transaction.atomic():
        followup = _claim(
            followup_id, status=FollowUpStatus.OVERDUE, escalated_at__isnull=True
        )
        if followup is None:
            return False
        recipients = managers_emails()
        if recipients:
            emails.send(
                "followup-escalated", to=recipients, context={"followup": followup}
            )
        followup.escalated_at = timezone.now()
        followup.save(update_fields=["escalated_at"])
        _event(
            followup,
            EventKind.ESCALATED,
            text=", ".join(recipients),
        )
    return True


def followups_sweep(*, now=None) -> dict:
    """
    Marks open follow-ups past due as overdue, escalates each overdue one once, and
    resends owner emails whose message was lost. Safe to run any number of times.
    """
    now = now or timezone.now()
    with transaction.atomic():
        newly_overdue = list(
            FollowUp.objects.select_for_update(skip_locked=True)
            .overdue(now)
            .filter(status=FollowUpStatus.OPEN)
            .order_by("due_at")
            .values_list("pk", flat=True)[:SWEEP_BATCH]
        )
        FollowUp.objects.filter(pk__in=newly_overdue).update(
            status=FollowUpStatus.OVERDUE
        )
        FollowUpEvent.objects.bulk_create(
            [
                FollowUpEvent(followup_id=pk, kind=EventKind.OVERDUE, created_at=now)
                for pk in newly_overdue
            ]
        )

    def each(ids, action) -> int:
        done = 0
        for pk in ids:
            try:
                done += action(followup_id=pk)
            except (smtplib.SMTPException, OSError) as e:
                # The row stays unclaimed; the next sweep tries again.
                logger.warning("Follow-up %s: email not sent: %s", pk, e)
        return done

    to_escalate = FollowUp.objects.filter(
        status=FollowUpStatus.OVERDUE, escalated_at__isnull=True
    ).values_list("pk", flat=True)[:SWEEP_BATCH]
    to_notify = (
        FollowUp.objects.unresolved()
        .filter(
            owner__isnull=False,
            owner_notified_at__isnull=True,
            assigned_at__lt=now - NOTIFY_GRACE,
        )
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    return {
        "overdue": len(newly_overdue),
        "escalated": each(list(to_escalate), followup_escalate),
        "notified": each(list(to_notify), followup_owner_notify),
    }
