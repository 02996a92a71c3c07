"""
When a scheduled invitation is due: the customer's time zone and the slots of a
campaign spread over a window. Pure computation, no database.
"""

import bisect
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from django.conf import settings

# The customer property that names the customer's time zone (an IANA name).
TIMEZONE_PROPERTY = "timezone"


@lru_cache(maxsize=1024)
def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return None


def customer_zone(name) -> zoneinfo.ZoneInfo:
    """
    Returns the time zone a customer's `timezone` property names, or
    DEFAULT_CUSTOMER_TIMEZONE when it names none (missing, not text, unknown).
    """
    zone = _zone(name) if isinstance(name, str) and 0 < len(name) <= 64 else None
    return zone or zoneinfo.ZoneInfo(settings.DEFAULT_CUSTOMER_TIMEZONE)


class SpreadPlan:
    """
    Spreads invitations evenly over the sending windows: the `days` calendar days
    from `start`, on `weekdays` (ISO, 1 = Monday; empty: every day), between
    `start_hour` and `end_hour` (None: all day) in each customer's own zone.

    Of `total` invitations in a zone, number i (0 … total-1) gets the time i + ½
    of the way through the zone's sending time, so the first and the last are half
    a slot from the ends and every day gets its share. A window that has begun when the
    campaign starts counts only its rest. A zone whose days hold no window (a
    weekend-only campaign of one weekday) sends in the next window after them.
    """

    def __init__(
        self,
        *,
        start: datetime,
        days: int,
        weekdays: list[int] | None,
        start_hour: int | None,
        end_hour: int | None,
    ):
        self.start = start
        self.days = days
        self.weekdays = set(weekdays or range(1, 8))
        self.start_hour = 0 if start_hour is None else start_hour
        self.end_hour = 24 if end_hour is None else end_hour
        self._segments = {}

    def _window(self, day: date, zone) -> tuple[datetime, datetime]:
        """The window of one local day, as UTC instants (DST changes its length)."""
        opens = datetime.combine(day, time(self.start_hour), tzinfo=zone)
        closes = datetime.combine(
            day + timedelta(days=self.end_hour // 24),
            time(self.end_hour % 24),
            tzinfo=zone,
        )
        return opens.astimezone(UTC), closes.astimezone(UTC)

    def segments(self, zone) -> tuple[list[datetime], list[float]]:
        """The zone's windows: their UTC starts and the seconds sent before each
        one ends (cumulative), for a bisect."""
        key = str(zone)
        if key not in self._segments:
            first = self.start.astimezone(zone).date()
            starts, ends, total = [], [], 0.0
            day, last = first, first + timedelta(days=self.days)
            # Past the window's days only until one window is found.
            while day < last or (not starts and day < last + timedelta(days=8)):
                if day.isoweekday() in self.weekdays:
                    opens, closes = self._window(day, zone)
                    opens = max(opens, self.start)
                    if closes > opens:
                        total += (closes - opens).total_seconds()
                        starts.append(opens)
                        ends.append(total)
                day += timedelta(days=1)
            self._segments[key] = (starts, ends)
        return self._segments[key]

    def due_at(self, index: int, zone, *, total: int) -> datetime:
        """Returns when invitation number `index` of `total` in `zone` is due, in
        UTC."""
        starts, ends = self.segments(zone)
        if not starts:
            return self.start
        offset = (index + 0.5) * ends[-1] / max(total, index + 1)
        n = min(bisect.bisect_right(ends, offset), len(starts) - 1)
        before = ends[n - 1] if n else 0.0
        return starts[n] + timedelta(seconds=int(offset - before))
