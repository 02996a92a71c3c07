"""The SLA due time: every hour, or a team's business hours in its zone."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from cxm.followups.models import Team
from cxm.followups.services import sla_due_at, team_save

SEOUL = ZoneInfo("Asia/Seoul")
NEW_YORK = ZoneInfo("America/New_York")


def team(**kwargs) -> Team:
    fields = {
        "business_hours_only": True,
        "time_zone": "Asia/Seoul",
        "holiday_country": "KR",
        "workday_start": time(9),
        "workday_end": time(18),
    }
    return Team(name="t", **{**fields, **kwargs})


def due(team, start, hours):
    return sla_due_at(team=team, start=start, hours=hours)


def test_it_counts_every_hour_without_a_team():
    start = datetime(2026, 3, 6, 17, 0, tzinfo=UTC)  # a Friday

    assert due(None, start, 48) == datetime(2026, 3, 8, 17, 0, tzinfo=UTC)


def test_it_counts_every_hour_for_a_team_without_business_hours():
    start = datetime(2026, 3, 6, 17, 0, tzinfo=SEOUL)

    assert due(team(business_hours_only=False), start, 4) == datetime(
        2026, 3, 6, 21, 0, tzinfo=SEOUL
    )


def test_it_carries_a_friday_evening_start_over_the_weekend():
    # Friday 17:00 in Seoul, 4 business hours: 1 on Friday, 3 on Monday.
    start = datetime(2026, 3, 13, 17, 0, tzinfo=SEOUL)

    result = due(team(), start, 4)

    assert result == datetime(2026, 3, 16, 12, 0, tzinfo=SEOUL)
    assert result.tzinfo == UTC  # stored in UTC


def test_it_starts_the_clock_at_opening_time_for_a_night_answer():
    start = datetime(2026, 3, 10, 2, 30, tzinfo=SEOUL)  # Tuesday night

    assert due(team(), start, 2) == datetime(2026, 3, 10, 11, 0, tzinfo=SEOUL)


def test_it_skips_korean_public_holidays():
    # 2026-09-24 to 26 is Chuseok (Thursday to Saturday): Wednesday 17:00 + 3 h
    # runs on to Monday the 28th.
    start = datetime(2026, 9, 23, 17, 0, tzinfo=SEOUL)

    assert due(team(), start, 3) == datetime(2026, 9, 28, 11, 0, tzinfo=SEOUL)
    # The same hours without holidays end on the Thursday.
    assert due(team(holiday_country=""), start, 3) == datetime(
        2026, 9, 24, 11, 0, tzinfo=SEOUL
    )


def test_it_skips_us_holidays_in_new_york():
    us = team(time_zone="America/New_York", holiday_country="US")
    # Wednesday 2026-11-25 16:00, 4 h: 2 that day, Thanksgiving (Thu 26th) off,
    # 2 on Friday.
    start = datetime(2026, 11, 25, 16, 0, tzinfo=NEW_YORK)

    assert due(us, start, 4) == datetime(2026, 11, 27, 11, 0, tzinfo=NEW_YORK)


def test_it_counts_real_hours_across_a_clock_change():
    us = team(time_zone="America/New_York", holiday_country="US")
    # Clocks go forward on Sunday 2026-03-08; Friday 17:00 EST + 2 business hours
    # is Monday 10:00 EDT, which is 14:00 UTC (not 15:00).
    start = datetime(2026, 3, 6, 17, 0, tzinfo=NEW_YORK)

    result = due(us, start, 2)

    assert result == datetime(2026, 3, 9, 10, 0, tzinfo=NEW_YORK)
    assert result == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)


def test_it_counts_a_team_working_on_saturdays():
    weekend = team(workdays=[0, 1, 2, 3, 4, 5], holiday_country="")
    start = datetime(2026, 3, 13, 17, 0, tzinfo=SEOUL)

    assert due(weekend, start, 4) == datetime(2026, 3, 14, 12, 0, tzinfo=SEOUL)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields, field",
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"holiday_country": "XX"}, "holiday_country"),
        ({"workdays": []}, "workdays"),
        ({"workdays": [7]}, "workdays"),
        ({"workday_start": time(18), "workday_end": time(9)}, "workday_end"),
    ],
)
def test_it_refuses_a_team_whose_hours_cannot_work(fields, field):
    with pytest.raises(ValidationError) as e:
        team_save(team=team(**fields))

    assert field in e.value.message_dict
    assert not Team.objects.exists()
