"""
Survey metrics: NPS, CSAT and CES, each counted by the database in one aggregate
over the response table, with the count behind it and its 95 % margin of error.

    NPS  = % promoters (9–10) − % detractors (0–6), −100…100
    CSAT = % of answers 4–5 on 1–5
    CES  = mean of 1–7 (higher = easier), and the % of 5–7

The bounds come from kinds.KINDS, as everywhere else.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import (
    Avg,
    Case,
    Count,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    StdDev,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, JSONObject
from django.utils.translation import gettext as _

from .kinds import KINDS, SurveyKind
from .models import Campaign, Invitation, InvitationStatus, Response, SkipReason, Survey

Z95 = 1.96


def _share_margin(part: int, n: int) -> float | None:
    """The 95 % margin of error of the share part/n, in percentage points."""
    if not n:
        return None
    p = part / n
    return round(Z95 * 100 * math.sqrt(p * (1 - p) / n), 1)


@dataclass(frozen=True)
class Nps:
    promoters: int
    passives: int
    detractors: int
    responses: int

    @property
    def score(self) -> float | None:
        """% promoters − % detractors, from −100 to 100; None without responses."""
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)

    nps = score

    @property
    def margin_of_error(self) -> float | None:
        """The NPS's margin of error at 95 %, in NPS points; None without responses.

        The variance of a promoter (+1), passive (0), detractor (−1) variable:
        p + d − (p − d)².
        """
        n = self.responses
        if not n:
            return None
        p, d = self.promoters / n, self.detractors / n
        return round(Z95 * 100 * math.sqrt((p + d - (p - d) ** 2) / n), 1)

    def as_dict(self) -> dict:
        return {
            "nps": self.score,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "responses": self.responses,
            "margin_of_error": self.margin_of_error,
        }


@dataclass(frozen=True)
class Csat:
    satisfied: int
    neutral: int
    dissatisfied: int
    responses: int

    @property
    def score(self) -> float | None:
        """% of answers 4–5; None without responses."""
        if not self.responses:
            return None
        return round(100 * self.satisfied / self.responses, 1)

    @property
    def margin_of_error(self) -> float | None:
        """At 95 %, in percentage points."""
        return _share_margin(self.satisfied, self.responses)

    def as_dict(self) -> dict:
        return {
            "csat": self.score,
            "satisfied": self.satisfied,
            "neutral": self.neutral,
            "dissatisfied": self.dissatisfied,
            "responses": self.responses,
            "margin_of_error": self.margin_of_error,
        }


@dataclass(frozen=True)
class Ces:
    easy: int
    neutral: int
    hard: int
    responses: int
    mean: float | None
    stddev: float | None

    @property
    def score(self) -> float | None:
        """The mean score, 1–7; None without responses."""
        return None if self.mean is None else round(self.mean, 2)

    @property
    def margin_of_error(self) -> float | None:
        """The mean's margin of error at 95 % (1.96 · s / √n); None below 2 answers."""
        if self.responses < 2 or self.stddev is None:
            return None
        return round(Z95 * self.stddev / math.sqrt(self.responses), 2)

    @property
    def easy_share(self) -> float | None:
        """% of answers 5–7."""
        if not self.responses:
            return None
        return round(100 * self.easy / self.responses, 1)

    def as_dict(self) -> dict:
        return {
            "ces": self.score,
            "easy_share": self.easy_share,
            "easy": self.easy,
            "neutral": self.neutral,
            "hard": self.hard,
            "responses": self.responses,
            "margin_of_error": self.margin_of_error,
            "easy_share_margin_of_error": _share_margin(self.easy, self.responses),
        }


Metric = Nps | Csat | Ces


def score_counts(kind: str, prefix: str = "") -> dict:
    """Aggregate expressions of a kind's counts over the field `prefix`score."""
    spec = KINDS[kind]
    score = prefix + "score"
    counts = {
        "responses": Count(score),
        "negative": Count(score, filter=Q((score + "__lte", spec.negative.high))),
        "positive": Count(score, filter=Q((score + "__gte", spec.positive.low))),
    }
    if kind == SurveyKind.CES:
        counts["mean"] = Avg(score)
        counts["stddev"] = StdDev(score, sample=True)
    return counts


def metric_from_row(kind: str, row) -> Metric:
    """Returns the metric of a row (dict or object) annotated with score_counts()."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    n, negative, positive = get("responses"), get("negative"), get("positive")
    neutral = n - negative - positive
    if kind == SurveyKind.NPS:
        return Nps(
            promoters=positive, passives=neutral, detractors=negative, responses=n
        )
    if kind == SurveyKind.CSAT:
        return Csat(
            satisfied=positive, neutral=neutral, dissatisfied=negative, responses=n
        )
    mean, stddev = get("mean"), get("stddev")
    return Ces(
        easy=positive,
        neutral=neutral,
        hard=negative,
        responses=n,
        mean=None if mean is None else float(mean),
        stddev=None if stddev is None else float(stddev),
    )


def responses_for(
    kind: str,
    *,
    campaign: Campaign | None = None,
    survey: Survey | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    properties: dict | None = None,
) -> QuerySet:
    """
    Returns the responses a metric of `kind` counts: of a campaign or a survey (which
    must be of that kind), answered in [since, until), of customers whose properties
    hold `properties`. Only the response table is read unless properties are given.
    """
    qs = Response.objects.all()
    named = [s for s in (campaign and campaign.survey, survey) if s is not None]
    for one in named:
        if one.kind != kind:
            raise ValidationError(
                _("“%(name)s” is a survey of another kind: %(kind)s.")
                % {"name": one, "kind": one.get_kind_display()}
            )
    if not named:
        qs = qs.filter(survey__in=Survey.objects.filter(kind=kind).values("pk"))
    if campaign is not None:
        qs = qs.filter(campaign=campaign)
    if survey is not None:
        qs = qs.filter(survey=survey)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if properties:
        qs = qs.filter(customer__properties__contains=properties)
    return qs


def metric(kind: str, *, responses: QuerySet | None = None, **filters) -> Metric:
    """Returns the NPS, CSAT or CES of the responses responses_for() selects (or of
    `responses`, already narrowed to one kind)."""
    qs = responses if responses is not None else responses_for(kind, **filters)
    return metric_from_row(kind, qs.aggregate(**score_counts(kind)))


def nps(**filters) -> Nps:
    return metric(SurveyKind.NPS, **filters)


def csat(**filters) -> Csat:
    return metric(SurveyKind.CSAT, **filters)


def ces(**filters) -> Ces:
    return metric(SurveyKind.CES, **filters)


def _bound(side: str, kind_field: str):
    """The negative high or positive low bound of each kind, as an SQL CASE."""
    return Case(
        *[
            When(
                **{kind_field: kind},
                then=Value(
                    spec.negative.high if side == "negative" else spec.positive.low
                ),
            )
            for kind, spec in KINDS.items()
        ],
        output_field=IntegerField(),
    )


def metrics_by_kind(responses: QuerySet | None = None) -> dict[str, Metric]:
    """Returns the metric of every standard kind that has answers (of all responses,
    or of `responses`), from one query grouped by kind."""
    qs = Response.objects.all() if responses is None else responses
    rows = (
        qs.filter(score__isnull=False)
        .values("survey__kind")
        .order_by("survey__kind")
        .annotate(
            responses=Count("score"),
            negative=Count(
                "score", filter=Q(score__lte=_bound("negative", "survey__kind"))
            ),
            positive=Count(
                "score", filter=Q(score__gte=_bound("positive", "survey__kind"))
            ),
            mean=Avg("score"),
            stddev=StdDev("score", sample=True),
        )
    )
    found = {row["survey__kind"]: row for row in rows}
    return {kind: metric_from_row(kind, found[kind]) for kind in KINDS if kind in found}


def _of_campaign(model, aggregate, **match):
    """A subquery of one aggregate over `model`'s rows of the outer campaign."""
    return Subquery(
        model.objects.filter(campaign=OuterRef("pk"), **match)
        .order_by()
        .values("campaign")
        .annotate(value=aggregate)
        .values("value")
    )


# An invitation whose email reached the customer's mail server: sent, answered
# after it or expired since (a bounce is not delivered). The denominator of the
# response rate.
DELIVERED = Q(sent_at__isnull=False) & ~Q(status=InvitationStatus.BOUNCED)


def response_rate(responses: int, delivered: int) -> float | None:
    """Responses ÷ delivered invitations, in %; None before anything was delivered."""
    if not delivered:
        return None
    return round(100 * responses / delivered, 1)


@dataclass(frozen=True)
class CampaignStats:
    """Where a campaign's invitations stand, and the answers so far."""

    invited: int
    states: dict[str, int]
    skipped: dict[str, int]
    reminded: int
    reminders_sent: int
    delivered: int
    responses: int
    metric: Metric | None

    @property
    def response_rate(self) -> float | None:
        return response_rate(self.responses, self.delivered)

    def as_dict(self) -> dict:
        return {
            "invited": self.invited,
            "states": self.states,
            "skipped": self.skipped,
            "reminded": self.reminded,
            "reminders_sent": self.reminders_sent,
            "delivered": self.delivered,
            "responses": self.responses,
            "response_rate": self.response_rate,
            "metric": self.metric.as_dict() if self.metric else None,
        }


def campaign_stats(campaign: Campaign, *, with_metric: bool = True) -> CampaignStats:
    """
    Returns a campaign's invitations counted per state and per skip reason, its
    reminders, deliveries and responses (one aggregate over its invitations, through
    their campaign index), and its headline metric (one over its responses) unless
    not `with_metric`.
    """
    counts = {
        f"state_{value}": Count("pk", filter=Q(status=value))
        for value in InvitationStatus.values
    }
    counts.update(
        {
            f"skip_{value}": Count("pk", filter=Q(skip_reason=value))
            for value in SkipReason.values
        }
    )
    row = Invitation.objects.filter(campaign=campaign).aggregate(
        invited=Count("pk"),
        reminded=Count("pk", filter=Q(reminders_sent__gt=0)),
        reminders_sent=Coalesce(Sum("reminders_sent"), 0),
        delivered=Count("pk", filter=DELIVERED),
        responses=Count("pk", filter=Q(answered_at__isnull=False)),
        **counts,
    )
    kind = campaign.survey.kind
    return CampaignStats(
        invited=row["invited"],
        states={value: row[f"state_{value}"] for value in InvitationStatus.values},
        skipped={value: row[f"skip_{value}"] for value in SkipReason.values},
        reminded=row["reminded"],
        reminders_sent=row["reminders_sent"],
        delivered=row["delivered"],
        responses=row["responses"],
        metric=(
            metric(kind, campaign=campaign) if with_metric and kind in KINDS else None
        ),
    )


def campaigns_with_counts(campaigns: QuerySet | None = None) -> QuerySet:
    """
    Returns campaigns with their survey, annotated with `invited` (invitations),
    `delivered` (see DELIVERED) and `response_counts`, what campaign_metric() and
    campaign_response_rate() read: one subquery on each table
    through its campaign index (the responses read once for all their counts), run
    only for the rows fetched.
    """
    qs = Campaign.objects.all() if campaigns is None else campaigns
    negative_high = OuterRef("negative_high")
    positive_low = OuterRef("positive_low")
    return qs.select_related("survey").annotate(
        negative_high=_bound("negative", "survey__kind"),
        positive_low=_bound("positive", "survey__kind"),
        invited=Coalesce(_of_campaign(Invitation, Count("pk")), 0),
        delivered=Coalesce(_of_campaign(Invitation, Count("pk", filter=DELIVERED)), 0),
        response_counts=_of_campaign(
            Response,
            JSONObject(
                responses=Count("pk"),
                negative=Count("pk", filter=Q(score__lte=negative_high)),
                positive=Count("pk", filter=Q(score__gte=positive_low)),
                mean=Avg("score"),
                stddev=StdDev("score", sample=True),
            ),
        ),
    )


def campaign_responded(campaign) -> int:
    """How many responses a campaign from campaigns_with_counts() has."""
    return (campaign.response_counts or {}).get("responses", 0)


def campaign_response_rate(campaign) -> float | None:
    """Responses ÷ delivered invitations (%) of a campaign from
    campaigns_with_counts()."""
    return response_rate(campaign_responded(campaign), campaign.delivered)


def campaign_metric(campaign) -> Metric | None:
    """The headline metric of a campaign from campaigns_with_counts(); None for a
    custom survey."""
    kind = campaign.survey.kind
    if kind not in KINDS:
        return None
    row = campaign.response_counts or {}
    return metric_from_row(
        kind,
        {
            "responses": row.get("responses", 0),
            "negative": row.get("negative", 0),
            "positive": row.get("positive", 0),
            "mean": row.get("mean"),
            "stddev": row.get("stddev"),
        },
    )


def kind_score_counts(
    *, kind_field: str = "survey__kind", when: Q | None = None, suffix: str = ""
) -> dict:
    """
    Aggregate expressions of the counts metric_from_row() reads, for rows of every
    standard kind at once (the kind's bounds read from `kind_field`), counting only
    the rows `when` holds for, each named with `suffix` appended: what a grouped
    query of several kinds and periods annotates.
    """
    when = Q(score__isnull=False) & (when or Q())
    return {
        "responses" + suffix: Count("score", filter=when),
        "negative" + suffix: Count(
            "score", filter=when & Q(score__lte=_bound("negative", kind_field))
        ),
        "positive" + suffix: Count(
            "score", filter=when & Q(score__gte=_bound("positive", kind_field))
        ),
        "mean" + suffix: Avg("score", filter=when),
        "stddev" + suffix: StdDev("score", sample=True, filter=when),
    }


def metric_from_counts(kind: str, row: dict, suffix: str = "") -> Metric:
    """Returns the metric of a row annotated with kind_score_counts(suffix=…)."""
    return metric_from_row(
        kind,
        {
            name: row[name + suffix]
            for name in ("responses", "negative", "positive", "mean", "stddev")
        },
    )
