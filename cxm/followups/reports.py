"""
The closed loop's reports: how many follow-ups are open, overdue and resolved,
how often each SLA was met, how long first contact and resolution took (medians),
and how many customers a check-in says we recovered; in total and by team, owner,
root cause and ISO week of opening.

Every figure is counted by the database: one query for the totals and one per
breakdown, however many follow-ups there are. The medians are PostgreSQL's
percentile_cont; on SQLite (`make run`), which has none, one more query per
breakdown reads the durations and Python takes their medians.

Which follow-ups count is the visibility rule (selectors.followups_visible_to):
a manager's reports cover their teams', staff accounts' everyone's.
"""

import csv
import statistics
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncWeek
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import UNRESOLVED, RootCause, Team, overdue_q
from .selectors import followups_visible_to

BREAKDOWNS = ("team", "owner", "root_cause", "week")


class Median(Aggregate):
    """PostgreSQL's continuous median of an interval (nulls left out)."""

    function = "PERCENTILE_CONT"
    name = "Median"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


def _duration(end: str) -> ExpressionWrapper:
    """From opening to the `end` column: null while `end` is."""
    return ExpressionWrapper(F(end) - F("created_at"), output_field=DurationField())


@dataclass(frozen=True)
class Figures:
    """The figures of a set of follow-ups, with the counts behind each share."""

    followups: int = 0
    open: int = 0
    overdue: int = 0
    resolved: int = 0
    contacted: int = 0
    # First contact at or before its due time, of those whose SLA is decided:
    # contacted, or still uncontacted past the due time.
    first_contact_met: int = 0
    first_contact_measured: int = 0
    # Resolved at or before the due time, of those resolved or open past it.
    resolution_met: int = 0
    resolution_measured: int = 0
    median_first_contact: timedelta | None = None
    median_resolution: timedelta | None = None
    # Check-ins the customer answered, and those that said "yes, resolved".
    checkins_answered: int = 0
    recovered: int = 0

    @property
    def first_contact_share(self) -> float | None:
        """% of first contacts within their SLA; None when none is decided."""
        return _share(self.first_contact_met, self.first_contact_measured)

    @property
    def resolution_share(self) -> float | None:
        return _share(self.resolution_met, self.resolution_measured)

    @property
    def recovery_rate(self) -> float | None:
        """% of answered check-ins that say the issue was resolved."""
        return _share(self.recovered, self.checkins_answered)

    @property
    def median_first_contact_text(self) -> str:
        return duration_text(self.median_first_contact)

    @property
    def median_resolution_text(self) -> str:
        return duration_text(self.median_resolution)

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("median_first_contact", "median_resolution"):
            value = data.pop(name)
            data[f"{name}_seconds"] = (
                None if value is None else round(value.total_seconds(), 1)
            )
        data["first_contact_share"] = self.first_contact_share
        data["resolution_share"] = self.resolution_share
        data["recovery_rate"] = self.recovery_rate
        return data


def _share(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


@dataclass(frozen=True)
class Row:
    """One line of a breakdown: its key (an id, an ISO week; None for none)."""

    key: int | str | None
    label: str
    figures: Figures


@dataclass(frozen=True)
class FollowUpReport:
    totals: Figures
    by_team: list[Row]
    by_owner: list[Row]
    by_root_cause: list[Row]
    by_week: list[Row]

    def breakdowns(self) -> dict[str, list[Row]]:
        return {name: getattr(self, f"by_{name}") for name in BREAKDOWNS}


def _counts(now) -> dict:
    """The Count aggregates of Figures, as of `now`."""
    first_contact_met = Q(first_contact_at__lte=F("first_contact_due_at"))
    first_contact_missed = Q(first_contact_at__gt=F("first_contact_due_at")) | Q(
        first_contact_at__isnull=True,
        first_contact_due_at__lt=now,
        status__in=UNRESOLVED,
    )
    resolution_met = Q(resolved_at__lte=F("due_at"))
    resolution_missed = Q(resolved_at__gt=F("due_at")) | Q(
        status__in=UNRESOLVED, due_at__lt=now
    )
    return {
        "followups": Count("pk"),
        "open": Count("pk", filter=Q(status__in=UNRESOLVED)),
        "overdue": Count("pk", filter=overdue_q(now)),
        "resolved": Count("pk", filter=Q(resolved_at__isnull=False)),
        "contacted": Count("pk", filter=Q(first_contact_at__isnull=False)),
        "first_contact_met": Count("pk", filter=first_contact_met),
        "first_contact_measured": Count(
            "pk", filter=first_contact_met | first_contact_missed
        ),
        "resolution_met": Count("pk", filter=resolution_met),
        "resolution_measured": Count("pk", filter=resolution_met | resolution_missed),
        "checkins_answered": Count("pk", filter=Q(recovered__isnull=False)),
        "recovered": Count("pk", filter=Q(recovered=True)),
    }


def _has_percentile() -> bool:
    return connection.vendor == "postgresql"


def _aggregates(now) -> dict:
    aggregates = _counts(now)
    if _has_percentile():
        aggregates["median_first_contact"] = Median(_duration("first_contact_at"))
        aggregates["median_resolution"] = Median(_duration("resolved_at"))
    return aggregates


def _median(values: list) -> timedelta | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _medians_read(qs: QuerySet, key: str | None) -> dict:
    """
    Without percentile_cont: {key value: (median first contact, median
    resolution)} from the durations of `qs`, read in one query.
    """
    columns = [key] if key else []
    durations: dict = {}
    rows = qs.values_list(*columns, "created_at", "first_contact_at", "resolved_at")
    for row in rows.order_by():
        group = row[0] if key else None
        created, contacted, resolved = row[-3:]
        first, resolution = durations.setdefault(group, ([], []))
        if contacted is not None:
            first.append(contacted - created)
        if resolved is not None:
            resolution.append(resolved - created)
    return {k: (_median(a), _median(b)) for k, (a, b) in durations.items()}


def _figures(row: dict, medians: tuple | None = None) -> Figures:
    names = {f.name for f in fields(Figures)}
    values = {k: v for k, v in row.items() if k in names}
    if medians is not None:
        values["median_first_contact"], values["median_resolution"] = medians
    return Figures(**values)


def _grouped(qs: QuerySet, key: str, columns: list[str], now) -> list[dict]:
    """The figures of qs grouped by `columns` (the first of them is `key`)."""
    rows = list(qs.values(*columns).annotate(**_aggregates(now)).order_by())
    if not _has_percentile():
        medians = _medians_read(qs, key)
        for row in rows:
            row["medians"] = medians.get(row[key], (None, None))
    return rows


def _week_label(week: datetime) -> str:
    """The ISO week of TruncWeek's Monday: "2026-W48"."""
    if timezone.is_aware(week):
        week = timezone.localtime(week)
    year, number, _day = week.date().isocalendar()
    return f"{year}-W{number:02d}"


# Dates beyond which no follow-up is: no bound there, so that 0001-01-01 and
# 9999-12-31 (valid dates) need no datetime outside Python's range.
NO_EARLIER = date(1900, 1, 1)
NO_LATER = date(9000, 1, 1)


def period_bounds(since: date | None, until: date | None):
    """The period's aware bounds, [since's midnight, the midnight after until)."""
    start = end = None
    if since is not None and since > NO_EARLIER:
        start = timezone.make_aware(datetime.combine(since, time.min))
    if until is not None and until < NO_LATER:
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))
    return start, end


def followups_report(
    *,
    user,
    since: date | None = None,
    until: date | None = None,
    team: Team | None = None,
    now=None,
) -> FollowUpReport:
    """
    Returns the report of the follow-ups `user` may see that were opened from
    `since` to `until` (dates in the current time zone, both included), of
    `team` if given.
    """
    now = now or timezone.now()
    qs = followups_visible_to(user).select_related(None).order_by()
    start, end = period_bounds(since, until)
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    if team is not None:
        qs = qs.filter(team=team)

    totals = qs.aggregate(**_aggregates(now))
    medians = None if _has_percentile() else _medians_read(qs, None).get(None)
    if medians is None and not _has_percentile():
        medians = (None, None)  # no follow-up at all
    report_totals = _figures(totals, medians)

    def rows(key, columns, label, order):
        grouped = _grouped(qs, key, columns, now)
        grouped.sort(key=order)
        return [Row(r[key], label(r), _figures(r, r.get("medians"))) for r in grouped]

    nobody = _("Nobody")
    by_team = rows(
        "team_id",
        ["team_id", "team__name"],
        lambda r: r["team__name"] or _("No team"),
        lambda r: (r["team__name"] is None, r["team__name"] or ""),
    )
    by_owner = rows(
        "owner_id",
        ["owner_id", "owner__username"],
        lambda r: r["owner__username"] or nobody,
        lambda r: (r["owner__username"] is None, r["owner__username"] or ""),
    )
    by_root_cause = rows(
        "root_cause_id",
        [
            "root_cause_id",
            "root_cause__name_en",
            "root_cause__name_ko",
            "root_cause__position",
        ],
        lambda r: (
            RootCause(
                name_en=r["root_cause__name_en"], name_ko=r["root_cause__name_ko"]
            ).name
            if r["root_cause_id"]
            else _("Not resolved")
        ),
        lambda r: (
            r["root_cause_id"] is None,
            r["root_cause__position"] or 0,
            r["root_cause_id"] or 0,
        ),
    )
    weekly = _grouped(qs.annotate(week=TruncWeek("created_at")), "week", ["week"], now)
    weekly.sort(key=lambda r: r["week"])
    by_week = [
        Row(
            _week_label(r["week"]),
            _week_label(r["week"]),
            _figures(r, r.get("medians")),
        )
        for r in weekly
    ]
    return FollowUpReport(
        totals=report_totals,
        by_team=by_team,
        by_owner=by_owner,
        by_root_cause=by_root_cause,
        by_week=by_week,
    )


CSV_COLUMNS = [
    "breakdown",
    "key",
    "name",
    "followups",
    "open",
    "overdue",
    "resolved",
    "contacted",
    "first_contact_met",
    "first_contact_measured",
    "first_contact_share",
    "resolution_met",
    "resolution_measured",
    "resolution_share",
    "median_first_contact_seconds",
    "median_resolution_seconds",
    "checkins_answered",
    "recovered",
    "recovery_rate",
]


def _cell(value):
    """A value a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def report_csv_write(report: FollowUpReport, out) -> None:
    """Writes the totals and every breakdown to `out` as CSV, one row per line."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    lines = [("total", None, _("All follow-ups"), report.totals)] + [
        (name, row.key, row.label, row.figures)
        for name, rows in report.breakdowns().items()
        for row in rows
    ]
    for breakdown, key, label, figures in lines:
        data = {"breakdown": breakdown, "key": key, "name": label, **figures.as_dict()}
        writer.writerow([_cell(data[column]) for column in CSV_COLUMNS])


def duration_text(value: timedelta | None) -> str:
    """A median as people read it: "2 d 4 h", "3 h 20 min", "12 min"."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        if not hours:
            return _("%(days)d d") % {"days": days}
        return _("%(days)d d %(hours)d h") % {"days": days, "hours": hours}
    if hours:
        if not minutes:
            return _("%(hours)d h") % {"hours": hours}
        return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
    return _("%(minutes)d min") % {"minutes": minutes}
