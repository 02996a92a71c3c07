"""
The live journey map: per touchpoint, the score of the campaigns measuring it, its
change against the previous period, its follow-ups and comments; the emotion curve,
the pain points and the drop-off between stages.

A map is a fixed number of queries whatever the data: the stages, the touchpoints,
their campaigns, one aggregate over the responses (grouped by touchpoint and survey
kind, both periods at once with FILTER) and one over the interactions (drop-off).
"""

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Count, Q
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cxm.customers.models import Interaction, Segment
from cxm.customers.selectors import segment_customers
from cxm.followups.models import UNRESOLVED
from surveys.kinds import KINDS, SurveyKind
from surveys.metrics import Metric, kind_score_counts, metric_from_counts
from surveys.models import Response
from surveys.themes import comment_themes

from .models import Journey, Stage, Touchpoint

# The headline kind of a touchpoint measured by campaigns of several kinds.
KIND_ORDER = [SurveyKind.NPS, SurveyKind.CSAT, SurveyKind.CES]
# The field of each kind's metric counting its negative answers.
NEGATIVE_COUNT = {
    SurveyKind.NPS: "detractors",
    SurveyKind.CSAT: "dissatisfied",
    SurveyKind.CES: "hard",
}
# Pain points the map lists, worst first.
PAIN_POINTS = 5
# Comment themes on each touchpoint's card, and the newest comments they are read
# from: a card's themes cost one query and one analysis of this many comments (then
# surveys.themes caches them), whatever the number of responses.
THEMES = 3
THEMES_COMMENTS = 300


def measured_emotion(kind: str, metric: Metric | None) -> float | None:
    """
    Returns a headline score on the expected emotion's scale, −2…2: NPS −100…100,
    CSAT 0…100 % around 50 % and CES 1…7 around its middle 4, each stretched
    linearly; None without a score.
    """
    if metric is None or metric.score is None:
        return None
    score = float(metric.score)
    if kind == SurveyKind.NPS:
        value = score / 50
    elif kind == SurveyKind.CSAT:
        value = (score - 50) / 25
    else:
        spec = KINDS[kind]
        middle = (spec.low + spec.high) / 2
        value = (score - middle) / ((spec.high - spec.low) / 4)
    return round(max(-2.0, min(2.0, value)), 2)


@dataclass(frozen=True)
class Period:
    """Days [since, until], both included, in the active timezone."""

    since: dt.date
    until: dt.date

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def start(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.since, dt.time.min))

    @property
    def end(self) -> dt.datetime:
        """The first moment after the period."""
        day = self.until + dt.timedelta(days=1)
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min))

    def previous(self) -> "Period":
        """The period of equal length just before this one."""
        until = self.since - dt.timedelta(days=1)
        return Period(since=until - dt.timedelta(days=self.days - 1), until=until)


def responses_url(
    *,
    campaigns: list[int],
    period: Period,
    segment: Segment | None,
    kind: str | None = None,
    bucket: str | None = None,
    term: str | None = None,
) -> str | None:
    """
    Returns the link to the responses page listing the responses behind a figure,
    or None while the page is not installed.
    """
    try:
        path = reverse("surveys:responses")
    except NoReverseMatch:
        return None
    params = [("campaign", pk) for pk in campaigns]
    if kind:
        params.append(("kind", kind))
    if bucket:
        params.append(("bucket", bucket))
    params += [("since", period.since.isoformat()), ("until", period.until.isoformat())]
    if segment is not None:
        params.append(("segment", segment.pk))
    if term:
        params.append(("term", term))
    return f"{path}?{urlencode(params)}"


@dataclass
class TouchpointFigures:
    touchpoint: Touchpoint
    campaigns: list[int]
    kind: str | None = None
    metric: Metric | None = None
    previous: Metric | None = None
    followups_open: int = 0
    followups_opened: int = 0
    link: str | None = None
    negative_link: str | None = None
    themes: list = field(default_factory=list)

    @property
    def change(self) -> float | None:
        """The score minus the previous period's score, in the score's units."""
        if self.metric is None or self.previous is None:
            return None
        if self.metric.score is None or self.previous.score is None:
            return None
        return round(self.metric.score - self.previous.score, 2)

    @property
    def negative(self) -> int:
        """Detractors (NPS), dissatisfied (CSAT) or hard answers (CES)."""
        if self.metric is None:
            return 0
        return getattr(self.metric, NEGATIVE_COUNT[self.kind])

    @property
    def change_text(self) -> str:
        """The change with its sign (− for a drop), or "" without one."""
        change = self.change
        if change is None:
            return ""
        return f"{change:+g}".replace("-", "−")

    @property
    def measured_emotion(self) -> float | None:
        return measured_emotion(self.kind, self.metric) if self.kind else None

    @property
    def expected_emotion(self) -> int:
        return self.touchpoint.expected_emotion

    @property
    def negative_bucket(self) -> str | None:
        return KINDS[self.kind].negative.bucket if self.kind else None

    def as_dict(self) -> dict:
        tp = self.touchpoint
        return {
            "id": tp.pk,
            "name": tp.name,
            "stage": tp.stage_id,
            "channel": tp.channel,
            "interaction_kind": tp.interaction_kind,
            "campaigns": self.campaigns,
            "kind": self.kind,
            "metric": _metric_dict(self.metric, self.kind),
            "previous": _metric_dict(self.previous, self.kind),
            "change": self.change,
            "negative": self.negative,
            "followups_open": self.followups_open,
            "followups_opened": self.followups_opened,
            "expected_emotion": self.expected_emotion,
            "measured_emotion": self.measured_emotion,
            "themes": self.themes,
            "responses_url": self.link,
            "negative_responses_url": self.negative_link,
        }


def _metric_dict(metric: Metric | None, kind: str | None) -> dict | None:
    """The figures of a metric of any kind, under the same names."""
    if metric is None:
        return None
    return {
        "score": metric.score,
        "responses": metric.responses,
        "negative": getattr(metric, NEGATIVE_COUNT[kind]),
        "margin_of_error": metric.margin_of_error,
    }


@dataclass
class StageFigures:
    stage: Stage
    touchpoints: list[TouchpointFigures]
    reached: int = 0
    # Of the customers who reached this stage, those who reached the next one;
    # None for the last stage (or one followed by a stage nobody can reach).
    reached_next: int | None = None

    @property
    def next_share(self) -> float | None:
        """% of the customers who reached this stage and the next; None if none."""
        if self.reached_next is None or not self.reached:
            return None
        return round(100 * self.reached_next / self.reached, 1)

    @property
    def drop_off(self) -> float | None:
        """% of the customers who reached this stage but not the next."""
        share = self.next_share
        return None if share is None else round(100 - share, 1)

    def as_dict(self) -> dict:
        return {
            "id": self.stage.pk,
            "name": self.stage.name,
            "position": self.stage.position,
            "reached": self.reached,
            "reached_next": self.reached_next,
            "next_share": self.next_share,
            "drop_off": self.drop_off,
            "touchpoints": [t.as_dict() for t in self.touchpoints],
        }


@dataclass
class JourneyMap:
    journey: Journey
    period: Period
    segment: Segment | None
    channel: str | None
    stages: list[StageFigures]

    @property
    def touchpoints(self) -> list[TouchpointFigures]:
        return [t for stage in self.stages for t in stage.touchpoints]

    @property
    def curve(self) -> list[TouchpointFigures]:
        """The touchpoints in journey order: the emotion curve's points."""
        return self.touchpoints

    @property
    def pain_points(self) -> list[TouchpointFigures]:
        """
        The touchpoints where the experience breaks, worst first: ranked by their
        measured emotion (the score on one scale for every kind), then by negative
        answers, then by follow-ups opened; only those with a negative answer, a
        follow-up, or a score below what the team expects.
        """
        hurting = [
            t
            for t in self.touchpoints
            if t.metric is not None
            and t.metric.responses
            and (
                t.negative
                or t.followups_opened
                or (t.measured_emotion or 0) < t.expected_emotion
            )
        ]
        hurting.sort(
            key=lambda t: (t.measured_emotion, -t.negative, -t.followups_opened)
        )
        return hurting[:PAIN_POINTS]

    def as_dict(self) -> dict:
        return {
            "journey": {"id": self.journey.pk, "name": self.journey.name},
            "since": self.period.since.isoformat(),
            "until": self.period.until.isoformat(),
            "previous_since": self.period.previous().since.isoformat(),
            "previous_until": self.period.previous().until.isoformat(),
            "segment": self.segment.pk if self.segment else None,
            "channel": self.channel,
            "stages": [s.as_dict() for s in self.stages],
            "pain_points": [t.touchpoint.pk for t in self.pain_points],
        }


def touchpoint_responses(
    *, touchpoint_ids: list[int], period: Period, segment: Segment | None
):
    """The responses of the campaigns measuring the touchpoints, in the period,
    of the segment's customers (a queryset)."""
    qs = Response.objects.filter(
        campaign__touchpoints__in=touchpoint_ids,
        created_at__gte=period.start,
        created_at__lt=period.end,
    )
    if segment is not None:
        qs = qs.filter(customer__in=segment_customers(segment=segment).values("pk"))
    return qs


def touchpoint_themes(
    *, campaigns: list[int], period: Period, segment: Segment | None, limit: int
) -> list:
    """
    Returns the `limit` top comment themes of the newest THEMES_COMMENTS comments to
    the campaigns in the period (surveys.themes.comment_themes): one query unless
    cached.
    """
    responses = Response.objects.filter(
        campaign__in=campaigns, created_at__gte=period.start, created_at__lt=period.end
    )
    if segment is not None:
        responses = responses.filter(
            customer__in=segment_customers(segment=segment).values("pk")
        )
    newest = (
        responses.exclude(comment="")
        .order_by("-created_at", "-id")
        .values("pk")[:THEMES_COMMENTS]
    )
    return comment_themes(responses=Response.objects.filter(pk__in=newest), limit=limit)


def touchpoint_counts(
    *, touchpoint_ids: list[int], period: Period, segment: Segment | None
) -> list[dict]:
    """
    Returns one row per touchpoint and survey kind: the counts metric_from_counts()
    reads for the period and (suffix _before) the previous one, and the follow-ups
    of the period's answers, open and all: one query, both periods with FILTER.
    """
    before = period.previous()
    current = Q(created_at__gte=period.start)
    qs = touchpoint_responses(
        touchpoint_ids=touchpoint_ids,
        period=Period(since=before.since, until=period.until),
        segment=segment,
    )
    return list(
        qs.values("campaign__touchpoints", "survey__kind")
        .order_by()
        .annotate(
            **kind_score_counts(when=current),
            **kind_score_counts(when=~current, suffix="_before"),
            followups_open=Count(
                "followup", filter=current & Q(followup__status__in=UNRESOLVED)
            ),
            followups_opened=Count("followup", filter=current),
        )
    )


def stage_reach(
    *,
    stage_kinds: list[tuple[int, str]],
    period: Period,
    segment: Segment | None,
    channel: str | None,
) -> dict[int, tuple[int, int]]:
    """
    Returns, per stage number, how many customers had an interaction of one of the
    stage's kinds in the period, and how many of them also had one of the next
    stage's: one query (the distinct (customer, stage) pairs, joined to themselves).
    `stage_kinds` pairs a stage number with an interaction kind.
    """
    if not stage_kinds:
        return {}
    reached = Interaction.objects.filter(
        kind__in={kind for _, kind in stage_kinds},
        occurred_at__gte=period.start,
        occurred_at__lt=period.end,
    )
    if channel:
        reached = reached.filter(channel=channel)
    if segment is not None:
        reached = reached.filter(
            customer__in=segment_customers(segment=segment).values("pk")
        )
    # A kind may mark touchpoints of several stages: one When per pair would keep
    # only the first, so the pairs go in as a join instead.
    pairs = " UNION ALL ".join(["SELECT %s, %s"] * len(stage_kinds))
    pair_params = [value for pair in stage_kinds for value in pair]
    sql, params = (
        reached.order_by().values_list("customer_id", "kind").query.sql_with_params()
    )
    query = f"""
        WITH stage_kind(stage, kind) AS ({pairs}),
        reached(customer_id, stage) AS (
            SELECT DISTINCT i.customer_id, sk.stage
            FROM ({sql}) i
            JOIN stage_kind sk ON sk.kind = i.kind
        )
        SELECT r.stage, COUNT(*), COUNT(n.customer_id)
        FROM reached r
        LEFT JOIN reached n ON n.customer_id = r.customer_id AND n.stage = r.stage + 1
        GROUP BY r.stage
    """
    with connection.cursor() as cursor:
        cursor.execute(query, [*pair_params, *params])
        return {stage: (count, next_count) for stage, count, next_count in cursor}


def journey_map(
    *,
    journey: Journey,
    since: dt.date,
    until: dt.date,
    segment: Segment | None = None,
    channel: str | None = None,
    themes: int = THEMES,
) -> JourneyMap:
    """
    Returns the figures of a journey's map for a period, segment and channel: five
    queries, and one more per touchpoint with answers for its `themes` top comment
    themes (none when 0, or when surveys.themes has them cached).
    """
    period = Period(since=since, until=until)
    stages = list(Stage.objects.filter(journey=journey))
    touchpoints = Touchpoint.objects.filter(stage__journey=journey).select_related(
        "stage"
    )
    if channel:
        touchpoints = touchpoints.filter(channel=channel)
    touchpoints = list(
        touchpoints.order_by("stage__position", "stage", "position", "pk")
    )
    campaigns: dict[int, list[int]] = {t.pk: [] for t in touchpoints}
    for touchpoint_id, campaign_id in (
        Touchpoint.campaigns.through.objects.filter(touchpoint__in=campaigns)
        .values_list("touchpoint_id", "campaign_id")
        .order_by("campaign_id")
    ):
        campaigns[touchpoint_id].append(campaign_id)

    figures = {
        t.pk: TouchpointFigures(touchpoint=t, campaigns=campaigns[t.pk])
        for t in touchpoints
    }
    rows = (
        touchpoint_counts(touchpoint_ids=list(figures), period=period, segment=segment)
        if figures
        else []
    )
    by_touchpoint: dict[int, dict[str, dict]] = {}
    for row in rows:
        by_touchpoint.setdefault(row["campaign__touchpoints"], {})[
            row["survey__kind"]
        ] = row
    for pk, one in figures.items():
        kinds = by_touchpoint.get(pk, {})
        present = [k for k in KIND_ORDER if k in kinds and kinds[k]["responses"]]
        measured = [k for k in KIND_ORDER if k in kinds]
        if not present and not measured:
            continue
        one.kind = (present or measured)[0]
        row = kinds[one.kind]
        one.metric = metric_from_counts(one.kind, row)
        one.previous = metric_from_counts(one.kind, row, "_before")
        one.followups_open = sum(r["followups_open"] for r in kinds.values())
        one.followups_opened = sum(r["followups_opened"] for r in kinds.values())
    for one in figures.values():
        if one.campaigns:
            one.link = responses_url(
                campaigns=one.campaigns, period=period, segment=segment, kind=one.kind
            )
            if one.kind:
                one.negative_link = responses_url(
                    campaigns=one.campaigns,
                    period=period,
                    segment=segment,
                    kind=one.kind,
                    bucket=one.negative_bucket,
                )

        if themes and one.metric is not None and one.metric.responses:
            one.themes = [
                {
                    "term": theme.term,
                    "count": theme.count,
                    "language": theme.language,
                    "url": responses_url(
                        campaigns=one.campaigns,
                        period=period,
                        segment=segment,
                        term=theme.term,
                    ),
                }
                for theme in touchpoint_themes(
                    campaigns=one.campaigns,
                    period=period,
                    segment=segment,
                    limit=themes,
                )
            ]

    number = {stage.pk: n for n, stage in enumerate(stages)}
    stage_kinds = sorted(
        {
            (number[t.stage_id], t.interaction_kind)
            for t in touchpoints
            if t.interaction_kind
        }
    )
    reach = stage_reach(
        stage_kinds=stage_kinds, period=period, segment=segment, channel=channel
    )
    reachable = {n for n, _ in stage_kinds}
    result = []
    for n, stage in enumerate(stages):
        reached, reached_next = reach.get(n, (0, 0))
        result.append(
            StageFigures(
                stage=stage,
                touchpoints=[
                    f for f in figures.values() if f.touchpoint.stage_id == stage.pk
                ],
                reached=reached,
                reached_next=reached_next if n + 1 in reachable else None,
            )
        )
    return JourneyMap(
        journey=journey, period=period, segment=segment, channel=channel, stages=result
    )
