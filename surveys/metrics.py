"""
Survey metrics: NPS, CSAT and CES, each counted by the database in one aggregate
over the response table, with the count behind it and its 95 % margin of error.

    NPS  = % promoters (9–10) − % detractors (0–6), −100…100
    CSAT = % of answers 4–5 on 1–5
    CES  = mean of 1–7 (higher = easier), and the % of 5–7

The bounds come from kinds.KINDS, as everywhere else.
"""

import math
import re
from dataclasses import dataclass
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    StdDev,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, JSONObject, TruncMonth, TruncWeek
from django.utils.translation import gettext as _

from .kinds import KINDS, SurveyKind
from .models import (
    Campaign,
    DailyDelivery,
    DailyScore,
    Invitation,
    InvitationStatus,
    Response,
    SkipReason,
    Survey,
)
from .rollups import rollup_days, rollups_fold

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
    if not _kind_checked(kind, campaign=campaign, survey=survey):
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


def _kind_checked(kind: str, *, campaign=None, survey=None) -> bool:
    """Raises ValidationError if the campaign's or the survey's kind is not
    `kind`; returns whether either was named."""
    named = [s for s in (campaign and campaign.survey, survey) if s is not None]
    for one in named:
        if one.kind != kind:
            raise ValidationError(
                _("“%(name)s” is a survey of another kind: %(kind)s.")
                % {"name": one, "kind": one.get_kind_display()}
            )
    return bool(named)


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


# Trends, segments side by side and period comparisons ------------------------

INTERVALS = {"week": TruncWeek, "month": TruncMonth}
# The customer fields a figure may be split by besides segments; any other name
# is a key of the customers' free properties (plan, region …).
CUSTOMER_FIELDS = {"locale": "locale"}
BY_SEGMENT = "segment"
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
# Side by side, a chart stays readable with this many series; the largest win.
MAX_SERIES = 8


def by_clean(by: str) -> str:
    """Returns `by` (segment, locale or a property name) or raises ValidationError."""
    if by == BY_SEGMENT or by in CUSTOMER_FIELDS or PROPERTY_NAME.fullmatch(by):
        return by
    raise ValidationError(
        _(
            "“%(by)s” is not something to split by: use segment, locale or a "
            "customer property's name (letters, digits and _)."
        )
        % {"by": by}
    )


def _series_expression(by: str, prefix: str):
    """The SQL value of a row's series when split by a customer field or property."""
    if by in CUSTOMER_FIELDS:
        return Cast(F(f"{prefix}customer__{CUSTOMER_FIELDS[by]}"), TextField())
    return KeyTextTransform(by, f"{prefix}customer__properties")


def segment_filter(segment, prefix: str = "") -> Q:
    """The rows of customers in `segment` now (a subquery on the customers)."""
    from cxm.customers.selectors import segment_customers

    return Q((f"{prefix}customer__in", segment_customers(segment=segment).values("pk")))


def _grouped(qs: QuerySet, *, keys: dict, aggregates: dict, by, segments, prefix=""):
    """
    Returns the rows of `qs` grouped by `keys` (and by `by`'s series, as
    "series"), each with `aggregates`: one statement, a UNION ALL of one grouped
    query per segment when split by segment.
    """
    if by is None:
        return list(
            qs.values(**keys).annotate(series=Value(""), **aggregates).order_by()
        )
    if by != BY_SEGMENT:
        return list(
            qs.annotate(series=_series_expression(by, prefix))
            .values("series", **keys)
            .annotate(**aggregates)
            .order_by()
        )
    if not segments:
        return []
    parts = [
        qs.filter(segment_filter(segment, prefix))
        .values(**keys)
        .annotate(series=Value(str(segment.pk)), **aggregates)
        .order_by()
        for segment in segments
    ]
    return (
        list(parts[0].union(*parts[1:], all=True)) if len(parts) > 1 else list(parts[0])
    )


def _series_kept(rows: list[dict], by, segments, weight: str) -> list[dict]:
    """Returns the series of `rows` as {key, label}, the MAX_SERIES largest by
    `weight` (segments in their order), and drops the rows of the others."""
    if by is None:
        return [{"key": "", "label": ""}]
    if by == BY_SEGMENT:
        return [{"key": str(s.pk), "label": s.name} for s in segments]
    totals: dict = {}
    for row in rows:
        totals[row["series"]] = totals.get(row["series"], 0) + row[weight]
    largest = sorted(totals, key=lambda k: (-totals[k], k is None, k or ""))
    return [
        {"key": key or "", "label": key if key else _("(none)")}
        for key in largest[:MAX_SERIES]
    ]


@dataclass(frozen=True)
class Figure:
    """A figure's series ({key, label}, in the order to draw them) and its points
    (each naming its series by key)."""

    series: list[dict]
    points: list


@dataclass(frozen=True)
class Point:
    """One period of a series: its metric (with count and margin of error)."""

    period: date
    series: str
    metric: Metric


@dataclass(frozen=True)
class RatePoint:
    """One period of a series: invitations delivered in it, and how many of them
    were answered."""

    period: date
    series: str
    delivered: int
    responses: int

    @property
    def response_rate(self) -> float | None:
        return response_rate(self.responses, self.delivered)


def _keep(rows, series: list[dict]) -> list[dict]:
    keys = {s["key"] for s in series}
    return [r for r in rows if (r["series"] or "") in keys]


def _as_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


# The daily rollups (surveys/rollups.py) answer for whole days of all customers:
# the same counts as the rows, summed over a few rows a day instead of every
# response. None where they cannot answer (a segment, a split, another zone).


def _rollup_scores(
    kind: str,
    *,
    by=None,
    segment=None,
    campaign: Campaign | None = None,
    survey: Survey | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    properties: dict | None = None,
) -> QuerySet | None:
    """The DailyScore rows of responses_for(kind, …)'s responses, or None."""
    if by is not None or segment is not None or properties:
        return None
    days = rollup_days(since, until)
    if days is None:
        return None
    # The same checks of the campaign's and the survey's kind as the rows get.
    _kind_checked(kind, campaign=campaign, survey=survey)
    rollups_fold()
    # A day's count that went back to 0 (an answer moved or deleted) stays a row.
    qs = DailyScore.objects.filter(answers__gt=0)
    if campaign is not None:
        qs = qs.filter(campaign_id=campaign.pk)
    if survey is not None:
        qs = qs.filter(survey_id=survey.pk)
    if campaign is None and survey is None:
        qs = qs.filter(survey_id__in=Survey.objects.filter(kind=kind).values("pk"))
    return _days_filtered(qs, days)


def _days_filtered(qs: QuerySet, days: tuple) -> QuerySet:
    first, after = days
    if first is not None:
        qs = qs.filter(day__gte=first)
    if after is not None:
        qs = qs.filter(day__lt=after)
    return qs


def rollup_counts(kind: str, where: Q | None = None, suffix: str = "") -> dict:
    """The DailyScore sums score_counts() counts from the rows (the CES's mean and
    standard deviation as the sums of scores and of their squares, finished by
    _sums_finished)."""
    spec = KINDS[kind]
    where = where or Q()
    sums = {
        "responses": Sum("answers", filter=where, default=0),
        "negative": Sum(
            "answers", filter=where & Q(score__lte=spec.negative.high), default=0
        ),
        "positive": Sum(
            "answers", filter=where & Q(score__gte=spec.positive.low), default=0
        ),
    }
    if kind == SurveyKind.CES:
        sums["scores"] = Sum(F("answers") * F("score"), filter=where, default=0)
        sums["squares"] = Sum(
            F("answers") * F("score") * F("score"), filter=where, default=0
        )
    return {name + suffix: value for name, value in sums.items()}


def _sums_finished(kind: str, row: dict, suffix: str = "") -> dict:
    """Adds the CES's mean and sample standard deviation to a row of
    rollup_counts() (as Avg and StdDev would have given them from the rows)."""
    if kind != SurveyKind.CES:
        return row
    n = row["responses" + suffix]
    scores, squares = row.pop("scores" + suffix), row.pop("squares" + suffix)
    row["mean" + suffix] = scores / n if n else None
    row["stddev" + suffix] = (
        math.sqrt(max(0.0, (squares - scores * scores / n) / (n - 1)))
        if n > 1
        else None
    )
    return row


def trend(
    kind: str,
    *,
    interval: str = "week",
    by: str | None = None,
    segment=None,
    segments=(),
    **filters,
) -> Figure:
    """
    Returns the metric of `kind` per week or month (in the current time zone) of
    the responses responses_for(**filters) selects, of customers in `segment`;
    split by `by` into series (the largest MAX_SERIES; `segments` when by
    segment). One aggregate grouped by period (and series).
    """
    daily = _rollup_scores(kind, by=by, segment=segment, **filters)
    if daily is not None:
        rows = [
            _sums_finished(kind, row)
            for row in daily.values(period=INTERVALS[interval]("day"))
            .annotate(series=Value(""), **rollup_counts(kind))
            .order_by()
        ]
    else:
        qs = responses_for(kind, **filters)
        if segment is not None:
            qs = qs.filter(segment_filter(segment, ""))
        rows = _grouped(
            qs,
            keys={"period": INTERVALS[interval]("created_at")},
            aggregates=score_counts(kind),
            by=by,
            segments=segments,
        )
    series = _series_kept(rows, by, segments, "responses")
    rows = _keep(rows, series)
    rows.sort(key=lambda r: (r["period"], r["series"] or ""))
    return Figure(
        series,
        [
            Point(_as_date(r["period"]), r["series"] or "", metric_from_row(kind, r))
            for r in rows
        ],
    )


def invitations_for(
    kind: str,
    *,
    campaign: Campaign | None = None,
    survey: Survey | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet:
    """Returns the delivered invitations of `kind`'s campaigns (or of a campaign or
    survey) sent in [since, until): the response rate's denominator."""
    qs = Invitation.objects.filter(DELIVERED)
    if campaign is not None:
        qs = qs.filter(campaign=campaign)
    elif survey is not None:
        qs = qs.filter(campaign__survey=survey)
    else:
        qs = qs.filter(
            campaign__in=Campaign.objects.filter(survey__kind=kind).values("pk")
        )
    if since is not None:
        qs = qs.filter(sent_at__gte=since)
    if until is not None:
        qs = qs.filter(sent_at__lt=until)
    return qs


def _rollup_deliveries(
    kind: str,
    *,
    by=None,
    segment=None,
    campaign: Campaign | None = None,
    survey: Survey | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet | None:
    """The DailyDelivery rows of invitations_for(kind, …)'s invitations, or None
    where the rollup cannot answer."""
    if by is not None or segment is not None:
        return None
    days = rollup_days(since, until)
    if days is None:
        return None
    rollups_fold()
    qs = DailyDelivery.objects.filter(invitations__gt=0)
    if campaign is not None:
        qs = qs.filter(campaign_id=campaign.pk)
    elif survey is not None:
        qs = qs.filter(
            campaign_id__in=Campaign.objects.filter(survey=survey).values("pk")
        )
    else:
        qs = qs.filter(
            campaign_id__in=Campaign.objects.filter(survey__kind=kind).values("pk")
        )
    return _days_filtered(qs, days)


def response_rate_trend(
    kind: str,
    *,
    interval: str = "week",
    by: str | None = None,
    segment=None,
    segments=(),
    **filters,
) -> Figure:
    """
    Returns, per week or month of sending, the invitations delivered and how many
    of them were answered (responses ÷ delivered, as in campaign_stats), split like
    trend(). One aggregate over the invitations.
    """
    daily = _rollup_deliveries(kind, by=by, segment=segment, **filters)
    if daily is not None:
        rows = list(
            daily.values(period=INTERVALS[interval]("day"))
            .annotate(
                series=Value(""),
                delivered=Sum("invitations"),
                responses=Sum("answered_invitations"),
            )
            .order_by()
        )
    else:
        qs = invitations_for(kind, **filters)
        if segment is not None:
            qs = qs.filter(segment_filter(segment, ""))
        rows = _grouped(
            qs,
            keys={"period": INTERVALS[interval]("sent_at")},
            # Columns the invitation_sent index holds: no visit to the table.
            aggregates={
                "delivered": Count("sent_at"),
                "responses": Count("answered_at"),
            },
            by=by,
            segments=segments,
        )
    series = _series_kept(rows, by, segments, "delivered")
    rows = _keep(rows, series)
    rows.sort(key=lambda r: (r["period"], r["series"] or ""))
    return Figure(
        series,
        [
            RatePoint(
                _as_date(r["period"]), r["series"] or "", r["delivered"], r["responses"]
            )
            for r in rows
        ],
    )


def distribution(
    kind: str, *, by: str | None = None, segment=None, segments=(), **filters
) -> Figure:
    """
    Returns how many responses gave each score of the kind's scale, per series:
    [{"series", "score", "responses"}], every score present (0 where none). One
    aggregate grouped by score.
    """
    daily = _rollup_scores(kind, by=by, segment=segment, **filters)
    if daily is not None:
        rows = list(
            daily.values(value=F("score"))
            .annotate(series=Value(""), responses=Sum("answers"))
            .order_by()
        )
    else:
        qs = responses_for(kind, **filters).filter(score__isnull=False)
        if segment is not None:
            qs = qs.filter(segment_filter(segment, ""))
        rows = _grouped(
            qs,
            keys={"value": F("score")},
            aggregates={"responses": Count("score")},
            by=by,
            segments=segments,
        )
    series = _series_kept(rows, by, segments, "responses")
    counts = {(r["series"] or "", r["value"]): r["responses"] for r in rows}
    spec = KINDS[kind]
    return Figure(
        series,
        [
            {"series": s["key"], "score": n, "responses": counts.get((s["key"], n), 0)}
            for s in series
            for n in range(spec.low, spec.high + 1)
        ],
    )


# Comparing two periods -------------------------------------------------------

TESTS = {
    SurveyKind.NPS: "nps-z",
    SurveyKind.CSAT: "two-proportion-z",
    SurveyKind.CES: "welch-t",
}


def _normal_p(z: float) -> float:
    """The two-sided p-value of a standard normal statistic."""
    return math.erfc(abs(z) / math.sqrt(2))


def _beta_cf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function
    (Numerical Recipes' betacf, modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-12:
            break
    return h


def _student_p(t: float, df: float) -> float:
    """The two-sided p-value of Student's t with `df` degrees of freedom:
    I_x(df/2, 1/2) with x = df / (df + t²)."""
    x = df / (df + t * t)
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    a, b = df / 2, 0.5
    front = math.exp(
        math.lgamma(a + b)
        - math.lgamma(a)
        - math.lgamma(b)
        + a * math.log(x)
        + b * math.log(1 - x)
    )
    if x < (a + 1) / (a + b + 2):
        return front * _beta_cf(a, b, x) / a
    return 1 - front * _beta_cf(b, a, 1 - x) / b


@dataclass(frozen=True)
class Comparison:
    """Period a against period b: b's score − a's, the test's statistic and its
    two-sided p-value; significant when p < 0.05."""

    kind: str
    a: Metric
    b: Metric
    test: str
    statistic: float | None
    p_value: float | None
    df: float | None = None

    @property
    def difference(self) -> float | None:
        if self.a.score is None or self.b.score is None:
            return None
        return round(self.b.score - self.a.score, 2 if self.kind == "ces" else 1)

    @property
    def significant(self) -> bool:
        return self.p_value is not None and self.p_value < 0.05

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "a": self.a.as_dict(),
            "b": self.b.as_dict(),
            "difference": self.difference,
            "test": self.test,
            "statistic": None if self.statistic is None else round(self.statistic, 4),
            "df": None if self.df is None else round(self.df, 1),
            "p_value": None if self.p_value is None else round(self.p_value, 6),
            "significant": self.significant,
        }


def significance(kind: str, a: Metric, b: Metric) -> Comparison:
    """
    Returns the comparison of two metrics of `kind` with its test:
    NPS: a z-test on the difference of the two NPS, each with the variance of a
    +1/0/−1 variable, p + d − (p − d)²; CSAT: the two-proportion z-test (pooled);
    CES: Welch's t-test on the two means (Welch–Satterthwaite degrees of freedom).
    No statistic when either side has fewer than 2 responses or no variance.
    """
    test = TESTS[kind]
    na, nb = a.responses, b.responses
    none = Comparison(kind, a, b, test, None, None)
    if na < 2 or nb < 2:
        return none
    if kind == SurveyKind.NPS:
        pa, da = a.promoters / na, a.detractors / na
        pb, db = b.promoters / nb, b.detractors / nb
        va, vb = pa + da - (pa - da) ** 2, pb + db - (pb - db) ** 2
        se = math.sqrt(va / na + vb / nb)
        if not se:
            return none
        z = ((pb - db) - (pa - da)) / se
        return Comparison(kind, a, b, test, z, _normal_p(z))
    if kind == SurveyKind.CSAT:
        pooled = (a.satisfied + b.satisfied) / (na + nb)
        se = math.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
        if not se:
            return none
        z = (b.satisfied / nb - a.satisfied / na) / se
        return Comparison(kind, a, b, test, z, _normal_p(z))
    ea, eb = (a.stddev or 0) ** 2 / na, (b.stddev or 0) ** 2 / nb
    if not ea + eb:
        return none
    t = (b.mean - a.mean) / math.sqrt(ea + eb)
    df = (ea + eb) ** 2 / (ea**2 / (na - 1) + eb**2 / (nb - 1))
    return Comparison(kind, a, b, test, t, _student_p(t, df), df)


def compare(
    kind: str,
    *,
    a: tuple[datetime, datetime],
    b: tuple[datetime, datetime],
    segment=None,
    **filters,
) -> Comparison:
    """
    Returns the metric of `kind` in period a = [since, until) and in period b,
    with the significance of the difference: one aggregate over both periods,
    each counted with its own FILTER.
    """
    days = {"a": rollup_days(*a), "b": rollup_days(*b)}
    daily = _rollup_scores(kind, segment=segment, **filters)
    if daily is not None and None not in days.values():
        periods = {
            name: Q(day__gte=first, day__lt=after)
            for name, (first, after) in days.items()
        }
        sums = daily.filter(periods["a"] | periods["b"]).aggregate(
            **{
                key: value
                for name, where in periods.items()
                for key, value in rollup_counts(kind, where, f"_{name}").items()
            }
        )
        row = {}
        for name in periods:
            finished = _sums_finished(kind, dict(sums), f"_{name}")
            row |= {
                f"{name}_{key.removesuffix(f'_{name}')}": value
                for key, value in finished.items()
                if key.endswith(f"_{name}")
            }
    else:
        qs = responses_for(kind, **filters)
        if segment is not None:
            qs = qs.filter(segment_filter(segment, ""))
        periods = {
            name: Q(created_at__gte=since, created_at__lt=until)
            for name, (since, until) in (("a", a), ("b", b))
        }
        row = qs.filter(periods["a"] | periods["b"]).aggregate(
            **{
                f"{name}_{key}": _filtered(value, where)
                for name, where in periods.items()
                for key, value in score_counts(kind).items()
            }
        )
    metrics_of = {
        name: metric_from_row(
            kind, {key[2:]: value for key, value in row.items() if key[0] == name}
        )
        for name in periods
    }
    return significance(kind, metrics_of["a"], metrics_of["b"])


def _filtered(aggregate, where: Q):
    """The aggregate with `where` added to its FILTER."""
    aggregate = aggregate.copy()
    aggregate.filter = where if aggregate.filter is None else aggregate.filter & where
    return aggregate


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
