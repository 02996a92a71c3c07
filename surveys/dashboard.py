"""
The dashboard's filters and figures: a metric's trend with the response rate and
the distribution of scores, split by segment or a customer property, the period
against the one before it, and the comments' themes. Every figure is one SQL
aggregate from surveys.metrics; this module only picks the periods and the links.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django import forms
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from cxm.customers.models import Segment

from . import metrics
from .kinds import KINDS, SurveyKind, score_bucket
from .models import Campaign
from .rollups import one_fold

# The default period: the last twelve weeks, a quarter of weekly points.
DEFAULT_DAYS = 84
# A dashboard's period at most (two years of weeks, 24 months).
MAX_DAYS = 800
# The filter's campaigns: the latest of the kind.
CAMPAIGN_CHOICES = 100

BY_CHOICES = [
    ("", _("Nothing (all together)")),
    (metrics.BY_SEGMENT, _("Segment")),
    ("locale", _("Language")),
    ("plan", _("Plan")),
    ("region", _("Region")),
]


class DashboardForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("Metric"),
        choices=[
            (SurveyKind.NPS, _("NPS")),
            (SurveyKind.CSAT, _("CSAT")),
            (SurveyKind.CES, _("CES")),
        ],
        required=False,
    )
    since = forms.DateField(
        label=pgettext_lazy("period", "From"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    until = forms.DateField(
        label=pgettext_lazy("period", "To"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Included."),
    )
    interval = forms.ChoiceField(
        label=_("Points"),
        choices=[("week", _("Weekly")), ("month", _("Monthly"))],
        required=False,
    )
    by = forms.ChoiceField(label=_("Side by side"), choices=BY_CHOICES, required=False)
    # Choices set from the lists the view fetched once; clean_* returns the object.
    campaign = forms.ChoiceField(label=_("Campaign"), required=False)
    segment = forms.ChoiceField(label=_("Segment"), required=False)

    def __init__(self, data, *, segments, campaigns, **kwargs):
        # The default period shown in its fields, as if chosen.
        data = data.copy()
        today = timezone.localdate()
        if not data.get("since") and not data.get("until"):
            data["until"] = today.isoformat()
            data["since"] = (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        super().__init__(data, **kwargs)
        # The lists fetched once by the view, shown and checked from memory.
        self.fields["segment"].choices = [("", _("All customers"))] + [
            (s.pk, s.name) for s in segments
        ]
        self.fields["campaign"].choices = [("", _("All campaigns"))] + [
            (c.pk, c.name) for c in campaigns
        ]
        self._segments = {str(s.pk): s for s in segments}
        self._campaigns = {str(c.pk): c for c in campaigns}

    def clean_segment(self) -> Segment | None:
        return self._segments.get(self.cleaned_data["segment"])

    def clean_campaign(self) -> Campaign | None:
        return self._campaigns.get(self.cleaned_data["campaign"])

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        until = data.get("until") or today
        since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            raise forms.ValidationError(_("The period must start before it ends."))
        if (until - since).days + 1 > MAX_DAYS:
            raise forms.ValidationError(
                _("Choose a period of at most %(days)d days.") % {"days": MAX_DAYS}
            )
        if data.get("by") == metrics.BY_SEGMENT and data.get("segment"):
            raise forms.ValidationError(
                _("Show segments side by side or keep one segment, not both.")
            )
        data["since"], data["until"] = since, until
        data["kind"] = data.get("kind") or SurveyKind.NPS
        data["interval"] = data.get("interval") or "week"
        data["by"] = data.get("by") or None
        return data


def kind_from(params) -> str:
    """The kind a query asks for (NPS if none or not one), before the form runs:
    it chooses the campaigns the form offers."""
    kind = params.get("kind") or SurveyKind.NPS
    return kind if kind in KINDS else SurveyKind.NPS


def local_start(day: date) -> datetime:
    """The first instant of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def responses_link(**params) -> str:
    """The /responses/ page of the responses behind a figure (empty parameters
    left out); '' while the page does not exist."""
    try:
        url = reverse("surveys:responses")
    except NoReverseMatch:
        return ""
    query = [
        (key, value)
        for key, value in params.items()
        if value not in (None, "") and not isinstance(value, list)
    ]
    query += [
        (key, one)
        for key, value in params.items()
        if isinstance(value, list)
        for one in value
    ]
    return f"{url}?{urlencode(query)}" if query else url


@dataclass
class Period:
    since: date
    until: date  # included

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return local_start(self.since), local_start(self.until + timedelta(days=1))

    def before(self) -> "Period":
        """The period of the same length just before this one."""
        return Period(
            self.since - timedelta(days=self.days), self.since - timedelta(days=1)
        )


def period_end(start: date, interval: str) -> date:
    """The last day of the week or month that starts on `start`."""
    if interval == "week":
        return start + timedelta(days=6)
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following - timedelta(days=1)


THEMES_LIMIT = 10


def _themes(kind: str, *, segment, **filters) -> list[tuple]:
    """Returns (bucket, label, themes) of the negative and the positive answers'
    comments in the period: detractors and promoters for NPS."""
    from .themes import comment_themes

    spec = KINDS[kind]
    responses = metrics.responses_for(kind, **filters)
    if segment is not None:
        responses = responses.filter(metrics.segment_filter(segment))
    return [
        (
            side.bucket,
            BUCKET_LABELS[side.bucket],
            comment_themes(
                responses=responses.filter(score__gte=side.low, score__lte=side.high),
                limit=THEMES_LIMIT,
            ),
        )
        for side in (spec.negative, spec.positive)
    ]


BUCKET_LABELS = {
    "detractor": _("What detractors say"),
    "promoter": _("What promoters say"),
    "dissatisfied": _("What dissatisfied customers say"),
    "satisfied": _("What satisfied customers say"),
    "hard": _("What customers who found it hard say"),
    "easy": _("What customers who found it easy say"),
}


def figures(data: dict, *, segments) -> dict:
    """
    Returns the dashboard's figures for validated filters: the trend, response
    rate and distribution (split as asked), the period against the one before it,
    and a link to the responses of each figure; all as of one moment (the daily
    rollups folded once, before the first figure).
    """
    with one_fold():
        return _figures(data, segments=segments)


def _figures(data: dict, *, segments) -> dict:
    kind, interval, by = data["kind"], data["interval"], data["by"]
    campaign, segment = data.get("campaign"), data.get("segment")
    period = Period(data["since"], data["until"])
    earlier = period.before()
    since, until = period.bounds
    shown = list(segments[: metrics.MAX_SERIES]) if by == metrics.BY_SEGMENT else ()
    filters = {"campaign": campaign, "segment": segment}
    # What the trend, the response rate and the distribution are each asked.
    split = {"by": by, "segments": shown, "since": since, "until": until, **filters}
    trend = metrics.trend(kind, interval=interval, **split)
    rates = metrics.response_rate_trend(kind, interval=interval, **split)
    spread = metrics.distribution(kind, **split)
    comparison = metrics.compare(kind, a=earlier.bounds, b=period.bounds, **filters)
    themes = _themes(kind, since=since, until=until, **filters)
    labels = {s["key"]: s["label"] for s in trend.series}
    base = {
        "kind": kind,
        "campaign": campaign.pk if campaign else None,
        "segment": segment.pk if segment else None,
    }

    def link(*, start: date, end: date, series: str = "", **more) -> str:
        extra = {}
        if series and by == metrics.BY_SEGMENT:
            # A segment's series: its responses (no other segment is kept then).
            extra["segment"] = series
        params = {**base, "since": start.isoformat(), "until": end.isoformat()}
        return responses_link(**{**params, **extra, **more})

    spec = KINDS[kind]
    points = [
        {
            "period": p.period.isoformat(),
            "series": p.series,
            "label": labels.get(p.series, p.series),
            "score": p.metric.score,
            "margin_of_error": p.metric.margin_of_error,
            "responses": p.metric.responses,
            # A property's value has no parameter on the responses page: such a
            # point links to the period's responses of every value.
            "link": link(
                start=p.period,
                end=period_end(p.period, interval),
                series=p.series,
            ),
        }
        for p in trend.points
    ]
    rate_labels = {s["key"]: s["label"] for s in rates.series}
    result = {
        "kind": kind,
        "kind_label": {"nps": "NPS", "csat": "CSAT", "ces": "CES"}[kind],
        "unit": " %" if kind == SurveyKind.CSAT else "",
        "interval": interval,
        "by": by,
        "period": period,
        "earlier": earlier,
        "series": trend.series,
        "points": points,
        "rates": [
            {
                "period": p.period.isoformat(),
                "series": p.series,
                "label": rate_labels.get(p.series, p.series),
                "delivered": p.delivered,
                "responses": p.responses,
                "response_rate": p.response_rate,
            }
            for p in rates.points
        ],
        "distribution": [
            {
                **row,
                "label": labels.get(row["series"], row["series"])
                or {s["key"]: s["label"] for s in spread.series}.get(row["series"], ""),
                "tone": score_bucket(kind, row["score"]).tone,
                "link": link(
                    start=period.since,
                    end=period.until,
                    series=row["series"],
                    bucket=score_bucket(kind, row["score"]).bucket,
                ),
            }
            for row in spread.points
        ],
        "scale": list(range(spec.low, spec.high + 1)),
        "comparison": comparison,
        "now_link": link(start=period.since, end=period.until),
        "earlier_link": link(start=earlier.since, end=earlier.until),
        "themes": [
            {
                "bucket": bucket,
                "label": label,
                "themes": [
                    {
                        "term": theme.term,
                        "count": theme.count,
                        "language": theme.language,
                        "link": link(
                            start=period.since,
                            end=period.until,
                            bucket=bucket,
                            term=theme.term,
                        ),
                    }
                    for theme in found
                ],
            }
            for bucket, label, found in themes
        ],
    }
    # What dashboard.js draws: the same numbers as the tables, and the words of
    # the axes in the page's language.
    result["chart"] = {
        "series": [
            {"key": s["key"], "label": str(s["label"]) or result["kind_label"]}
            for s in trend.series
        ],
        "points": [
            {k: p[k] for k in ("period", "series", "score", "margin_of_error")}
            for p in points
        ],
        "rates": [
            {k: p[k] for k in ("period", "series", "response_rate")}
            for p in result["rates"]
        ],
        "rate_series": [
            {"key": s["key"], "label": str(s["label"]) or str(_("Response rate"))}
            for s in rates.series
        ],
        "distribution": [
            {k: row[k] for k in ("series", "score", "responses")}
            for row in result["distribution"]
        ],
        "scale": result["scale"],
        "words": {
            "responses": str(_("Responses")),
            "margin": str(_("margin of error")),
            "rate": str(_("Response rate (%)")),
        },
    }
    return result
