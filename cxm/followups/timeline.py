"""
The follow-ups' part of a customer's timeline (cxm.customers.timeline): every
event of their follow-ups (opened, notes, contacts, resolution …) and every email
exchanged about them, limited to the follow-ups the reader may see
(selectors.followups_visible_to).
"""

from collections.abc import Callable

from django.db import connection
from django.utils.translation import gettext_lazy as _

from cxm.customers.timeline import TimelineBranch, ids_in, ids_param, register_branch

from .models import EventKind, FollowUpEvent, MessageDirection, MessageKind
from .selectors import followups_visible_to


def visible_params(user, customer_id: int) -> dict:
    """
    Returns the ids of the customer's follow-ups `user` may see, read with the
    one rule (selectors.followups_visible_to) before the union runs: one query.
    """
    ids = (
        followups_visible_to(user)
        .filter(customer_id=customer_id)
        .order_by()
        .values_list("pk", flat=True)
    )
    return {"followups_visible": ids_param(ids, connection.vendor)}


def _where(alias: str) -> Callable:
    # The ids are already the customer's follow-ups: no join to find them.
    def where(vendor: str) -> str:
        return ids_in(f"{alias}.followup_id", "followups_visible", vendor)

    return where


def _joins(alias: str, user_column: str) -> str:
    return (
        f"JOIN followups_followup f ON f.id = {alias}.followup_id "
        f"LEFT JOIN auth_user u ON u.id = {alias}.{user_column}"
    )


def _event_shown(data: dict) -> dict:
    kind = data.get("kind")
    event = FollowUpEvent(kind=kind, text=data.get("text") or "", data=data["data"])
    return {
        "kind": EventKind(kind).label if kind in EventKind else kind,
        "description": event.description(),
    }


def _message_shown(data: dict) -> dict:
    direction, kind = data.get("direction"), data.get("kind")
    return {
        "direction": MessageDirection(direction).label
        if direction in MessageDirection
        else "",
        "kind": MessageKind(kind).label if kind in MessageKind else "",
    }


def register() -> None:
    # Only what the page shows of a message's body: a long email is cut in SQL.
    register_branch(
        TimelineBranch(
            kind="followup_event",
            label=_("Follow-up"),
            table="followups_followupevent e",
            where=_where("e"),
            joins=_joins("e", "actor_id"),
            at="e.created_at",
            id="e.id",
            data=(
                ("followup", "f.id"),
                ("kind", "e.kind"),
                ("text", "substr(e.text, 1, 1000)"),
                ("data:json", "e.data"),
                ("actor", "u.username"),
                ("status", "f.status"),
            ),
            template="followups/timeline/_event.html",
            params=visible_params,
            describe=_event_shown,
        )
    )
    register_branch(
        TimelineBranch(
            kind="followup_message",
            label=_("Email about a follow-up"),
            table="followups_followupmessage m",
            where=_where("m"),
            joins=_joins("m", "created_by_id"),
            at="m.created_at",
            id="m.id",
            data=(
                ("followup", "f.id"),
                ("direction", "m.direction"),
                ("kind", "m.kind"),
                ("subject", "m.subject"),
                ("body", "substr(m.body, 1, 1000)"),
                ("sent_at", "m.sent_at"),
                ("last_error", "substr(m.last_error, 1, 300)"),
                ("written_by", "u.username"),
            ),
            template="followups/timeline/_message.html",
            params=visible_params,
            describe=_message_shown,
        )
    )
