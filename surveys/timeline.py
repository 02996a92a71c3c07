"""
The surveys' part of a customer's timeline (cxm.customers.timeline): each
invitation with its delivery state, its last reminder, every version of every
answer; and the customer page's scores over time.
"""

from django.db.models import Avg, Count
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext_lazy as _

from cxm.customers.timeline import (
    CustomerPanel,
    TimelineBranch,
    register_branch,
    register_panel,
)

from .kinds import Bucket, kind_of, score_bucket
from .models import InvitationStatus, Response, SkipReason, SurveyKind

# How many months of scores the customer page shows.
SCORE_MONTHS = 12


def _invitation_shown(data: dict) -> dict:
    status = data.get("status")
    reason = data.get("skip_reason")
    return {
        "status": InvitationStatus(status).label if status in InvitationStatus else "",
        "skip_reason": SkipReason(reason).label if reason in SkipReason else "",
    }


def _answer_shown(data: dict) -> dict:
    kind, score = data.get("survey_kind"), data.get("score")
    shown = {
        "kind": SurveyKind(kind).label if kind in SurveyKind else kind,
        "bucket": "",
        "tone": "",
    }
    if score is not None and kind_of(kind) is not None:
        bucket = score_bucket(kind, score)
        shown |= {"bucket": Bucket(bucket.bucket).label, "tone": bucket.tone}
    return shown


def _answer_data(table: str) -> tuple:
    return (
        ("score", f"{table}.score"),
        ("comment", f"substr({table}.comment, 1, 1000)"),
        ("survey", "s.name"),
        ("survey_kind", "s.kind"),
        ("campaign", "c.name"),
    )


def scores_over_time(customer) -> dict:
    """
    Returns the customer's headline scores by survey kind and month, the latest
    SCORE_MONTHS months with answers: each row's kind, month, answers and mean
    score. One query.
    """
    rows = list(
        Response.objects.filter(customer=customer, score__isnull=False)
        .annotate(month=TruncMonth("created_at"))
        .values("survey__kind", "month")
        .annotate(answers=Count("pk"), mean=Avg("score"))
        .order_by("-month", "survey__kind")[: SCORE_MONTHS * len(SurveyKind)]
    )
    for row in rows:
        kind = row["survey__kind"]
        row["kind"] = SurveyKind(kind).label if kind in SurveyKind else kind
        scale = kind_of(kind)
        row["low"], row["high"] = (scale.low, scale.high) if scale else (0, 10)
        row["scale"] = f"{row['low']}–{row['high']}"
    return {"scores": rows}


def register() -> None:
    register_branch(
        TimelineBranch(
            kind="invitation",
            label=_("Invitation"),
            table="surveys_invitation i",
            where="i.customer_id = %(customer)s",
            joins="JOIN surveys_campaign c ON c.id = i.campaign_id",
            at="COALESCE(i.sent_at, i.created_at)",
            id="i.id",
            data=(
                ("campaign", "c.name"),
                ("status", "i.status"),
                ("skip_reason", "i.skip_reason"),
                ("wave", "i.wave"),
                ("sent_at", "i.sent_at"),
                ("answered_at", "i.answered_at"),
                ("complained_at", "i.complained_at"),
                ("reminders_sent", "i.reminders_sent"),
            ),
            template="surveys/timeline/_invitation.html",
            describe=_invitation_shown,
        )
    )
    register_branch(
        TimelineBranch(
            kind="reminder",
            label=_("Reminder"),
            table="surveys_invitation i",
            where="i.customer_id = %(customer)s AND i.reminded_at IS NOT NULL",
            joins="JOIN surveys_campaign c ON c.id = i.campaign_id",
            at="i.reminded_at",
            id="i.id",
            data=(
                ("campaign", "c.name"),
                ("reminders_sent", "i.reminders_sent"),
                ("status", "i.status"),
            ),
            template="surveys/timeline/_reminder.html",
            describe=_invitation_shown,
        )
    )
    # The current version of each answer, at the time it was given (or changed).
    register_branch(
        TimelineBranch(
            kind="response",
            label=_("Answer"),
            table="surveys_response r",
            where="r.customer_id = %(customer)s",
            joins="JOIN surveys_survey s ON s.id = r.survey_id "
            "JOIN surveys_campaign c ON c.id = r.campaign_id",
            at="r.updated_at",
            id="r.id",
            data=_answer_data("r") + (("changed", "r.updated_at > r.created_at"),),
            template="surveys/timeline/_response.html",
            describe=_answer_shown,
        )
    )
    # Each earlier version, at the time it was given.
    register_branch(
        TimelineBranch(
            kind="response_revision",
            label=_("Earlier answer"),
            table="surveys_responserevision v",
            where="v.response_id IN (SELECT id FROM surveys_response "
            "WHERE customer_id = %(customer)s)",
            joins="JOIN surveys_response r ON r.id = v.response_id "
            "JOIN surveys_survey s ON s.id = r.survey_id "
            "JOIN surveys_campaign c ON c.id = r.campaign_id",
            at="v.answered_at",
            id="v.id",
            data=_answer_data("v")
            + (("response", "r.id"), ("replaced_at", "v.replaced_at")),
            template="surveys/timeline/_response.html",
            describe=_answer_shown,
        )
    )
    register_panel(
        CustomerPanel(
            name="scores",
            template="surveys/timeline/_scores.html",
            context=scores_over_time,
        )
    )
