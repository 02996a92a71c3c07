import logging
import smtplib
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from cxm import emails
from cxm.access import is_cx_staff
from surveys.kinds import SurveyKind, is_negative
from surveys.models import Response

from .models import (
    AgentTurn,
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


def followup_due_at(opened_at: datetime) -> datetime:
    """Returns when a follow-up opened at `opened_at` is due under the SLA."""
    return opened_at + timedelta(hours=settings.FOLLOWUP_SLA_HOURS)


# The scores of each kind that make a follow-up urgent: the angrier, the higher.
HIGH_PRIORITY_MAX = {SurveyKind.NPS: 3, SurveyKind.CSAT: 1, SurveyKind.CES: 1}


def followup_priority(kind: str, score: int) -> str:
    """Returns the priority of a follow-up opened by a `kind` score."""
    return Priority.HIGH if score <= HIGH_PRIORITY_MAX[kind] else Priority.NORMAL


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


def agent_turns_ensure(*, user_ids) -> None:
    """Gives these users a place in the round robin (agents joining the group)."""
    AgentTurn.objects.bulk_create(
        [AgentTurn(user_id=pk) for pk in user_ids], ignore_conflicts=True
    )


def on_groups_changed(sender, *, instance, action, reverse, pk_set, **kwargs) -> None:
    """Gives users added to the CX agents group their place in the round robin."""
    if action != "post_add" or not pk_set:
        return
    if reverse:  # group.user_set.add(...): instance is the group
        if instance.name == settings.FOLLOWUP_AGENTS_GROUP:
            agent_turns_ensure(user_ids=pk_set)
    elif Group.objects.filter(
        pk__in=pk_set, name=settings.FOLLOWUP_AGENTS_GROUP
    ).exists():
        agent_turns_ensure(user_ids=[instance.pk])


def _agent_turn_take(*, skip_locked: bool) -> AgentTurn | None:
    return (
        AgentTurn.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        .select_related("user")
        .filter(user__is_active=True, user__groups__name=settings.FOLLOWUP_AGENTS_GROUP)
        .order_by(F("last_assigned_at").asc(nulls_first=True), "user_id")
        .first()
    )


def followup_owner_next(*, now):
    """
    Returns the CX agent assigned least recently (round robin), or None, and marks
    them assigned at `now`. Call inside the transaction that assigns.

    It locks that agent's turn, skipping turns other transactions hold, so two
    detractors answering at once get two agents without waiting; with every turn
    held it waits for the least recent one.
    """
    turn = _agent_turn_take(skip_locked=True)
    if turn is None:
        if not agents().exists():
            return None
        # Every agent is being assigned right now, or some joined without a turn.
        agent_turns_ensure(user_ids=agents().values_list("pk", flat=True))
        turn = _agent_turn_take(skip_locked=False)
        if turn is None:
            return None
    AgentTurn.objects.filter(pk=turn.pk).update(last_assigned_at=now)
    return turn.user


def _agent_turn_mark(*, owner, now) -> None:
    """A follow-up given by hand counts as the owner's turn too."""
    AgentTurn.objects.filter(user=owner).update(last_assigned_at=now)


def followup_open(*, response: Response) -> FollowUp | None:
    """
    Opens the follow-up of an unhappy customer's response (NPS ≤ 6, CSAT ≤ 2,
    CES ≤ 3), once; returns it, or None for a happier one. Call inside the
    transaction that records the response.
    """
    kind = response.survey.kind
    if not is_negative(kind, response.score):
        return None
    now = timezone.now()
    # No savepoint: the answer's transaction commits or rolls back the follow-up.
    with transaction.atomic(savepoint=False):
        owner = followup_owner_next(now=now)
        followup = FollowUp.objects.create(
            response=response,
            owner=owner,
            priority=followup_priority(kind, response.score),
            due_at=followup_due_at(now),
            created_at=now,
            assigned_at=now if owner else None,
        )
        events = [
            FollowUpEvent(
                followup=followup,
                kind=EventKind.OPENED,
                text=response.comment,
                data={"score": response.score},
                created_at=now,
            )
        ]
        if owner:
            events.append(
                FollowUpEvent(
                    followup=followup,
                    kind=EventKind.ASSIGNED,
                    text=owner.get_username(),
                    created_at=now,
                )
            )
            _notify_owner_on_commit(followup)
        FollowUpEvent.objects.bulk_create(events)
    return followup


def on_response_recorded(
    sender, *, response: Response, created: bool, changed: set, **kwargs
) -> None:
    """
    Opens a follow-up for an unhappy answer; on an open one, notes a changed score
    or a comment the customer added, and raises the priority of an angrier score.
    """
    if created:
        followup_open(response=response)
        return
    if not {"score", "comment"} & changed:
        return
    followup = FollowUp.objects.filter(response=response).first()
    if followup is None:
        if "score" in changed:
            followup_open(response=response)
        return
    if "score" in changed:
        _event(
            followup,
            EventKind.ANSWER_CHANGED,
            text=response.comment,
            data={"score": response.score},
        )
    elif response.comment:
        _event(followup, EventKind.COMMENTED, text=response.comment)
    # An angrier second answer raises the priority; a kinder one never lowers it.
    kind = response.survey.kind
    if (
        "score" in changed
        and is_negative(kind, response.score)
        and followup_priority(kind, response.score) == Priority.HIGH
    ):
        try:
            followup_set_priority(followup=followup, priority=Priority.HIGH, actor=None)
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
            raise ValidationError(_("This follow-up is resolved."), code="conflict")
        if followup.owner_id == (owner.pk if owner else None):
            return followup
        followup.owner = owner
        followup.assigned_at = now if owner else None
        followup.owner_notified_at = now if owner == actor else None
        followup.save(update_fields=["owner", "assigned_at", "owner_notified_at"])
        if owner:
            _agent_turn_mark(owner=owner, now=now)
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
            raise ValidationError(_("This follow-up is resolved."), code="conflict")
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
            raise ValidationError(
                _("This follow-up is already resolved."), code="conflict"
            )
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
        .select_related("owner", "response__customer")
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
