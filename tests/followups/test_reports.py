"""
The closed loop's reports: worked examples with known counts, shares and medians,
for each role, on the page, its CSV and the service behind both.

Follow-ups are opened, contacted and resolved through the real services; their
times are then set to the example's hours, which no clock in a test could wait for.
"""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.followups import reports
from cxm.followups.models import FollowUp, RootCause, Team
from cxm.followups.services import (
    followup_log_contact,
    followup_resolve,
    team_save,
)
from surveys.services import response_record
from tests.factories import InvitationFactory, UserFactory, agent
from tests.factories import manager as cx_manager

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)


def make_team(name, members, manager=None) -> Team:
    return team_save(team=Team(name=name, manager=manager), members=members)


def followup(
    *,
    team,
    owner,
    opened,
    contacted_after=None,
    resolved_after=None,
    cause="delivery",
    recovered=None,
    first_contact_sla=4 * H,
    resolution_sla=24 * H,
) -> FollowUp:
    """A detractor's follow-up opened at `opened`, contacted and resolved that long
    after it (None: not yet), with the SLAs given."""
    response = response_record(invitation=InvitationFactory(), score=2)
    item = response.followup
    if contacted_after is not None:
        followup_log_contact(followup=item, actor=owner, channel="phone", note="")
    if resolved_after is not None:
        followup_resolve(
            followup=item, actor=owner, resolution="Refunded.", root_cause=cause
        )
    FollowUp.objects.filter(pk=item.pk).update(
        team=team,
        owner=owner,
        created_at=opened,
        first_contact_due_at=opened + first_contact_sla,
        due_at=opened + resolution_sla,
        first_contact_at=None if contacted_after is None else opened + contacted_after,
        resolved_at=None if resolved_after is None else opened + resolved_after,
        recovered=recovered,
    )
    return FollowUp.objects.get(pk=item.pk)


@pytest.fixture
def example():
    """
    Seoul (manager "sora", agent "ahn") and Busan (manager "bora", agent "baek"):

    | #  | team  | first contact | resolved    | check-in |
    | s1 | Seoul | 1 h (met)     | 10 h (met)  | yes      |
    | s2 | Seoul | 3 h (met)     | 30 h (late) | no       |
    | s3 | Seoul | 6 h (late)    | open, past due (overdue)  |
    | s4 | Seoul | none, due in 3 h (opened an hour ago)      |
    | b1 | Busan | 2 h (met)     | 20 h (met)  | yes      |
    | b2 | Busan | none, past due (overdue), open             |

    SLAs: first contact 4 h, resolution 24 h. s4 was opened an hour ago, the
    rest four weeks ago.
    """
    sora, bora = cx_manager(username="sora"), cx_manager(username="bora")
    ahn, baek = agent(username="ahn"), agent(username="baek")
    seoul = make_team("Seoul", [ahn, sora], manager=sora)
    busan = make_team("Busan", [baek, bora], manager=bora)
    now = timezone.now()
    t0 = now - timedelta(days=28)
    return {
        "now": now,
        "t0": t0,
        "seoul": seoul,
        "busan": busan,
        "sora": sora,
        "bora": bora,
        "ahn": ahn,
        "baek": baek,
        "s1": followup(
            team=seoul,
            owner=ahn,
            opened=t0,
            contacted_after=1 * H,
            resolved_after=10 * H,
            recovered=True,
        ),
        "s2": followup(
            team=seoul,
            owner=ahn,
            opened=t0,
            contacted_after=3 * H,
            resolved_after=30 * H,
            recovered=False,
        ),
        "s3": followup(team=seoul, owner=sora, opened=t0, contacted_after=6 * H),
        "s4": followup(team=seoul, owner=ahn, opened=now - H),
        "b1": followup(
            team=busan,
            owner=baek,
            opened=t0,
            contacted_after=2 * H,
            resolved_after=20 * H,
            cause="product",
            recovered=True,
        ),
        "b2": followup(team=busan, owner=baek, opened=t0),
    }


def iso_week(moment) -> str:
    year, week, _day = timezone.localtime(moment).isocalendar()
    return f"{year}-W{week:02d}"


def staff_user():
    return UserFactory(is_staff=True)


def test_it_counts_everyones_followups_for_staff(example):
    t = reports.followups_report(user=staff_user()).totals

    assert (t.followups, t.open, t.overdue, t.resolved, t.contacted) == (6, 3, 2, 3, 4)
    assert (t.first_contact_met, t.first_contact_measured) == (3, 5)
    assert t.first_contact_share == 60.0
    assert (t.resolution_met, t.resolution_measured) == (2, 5)
    assert t.resolution_share == 40.0
    # 1, 2, 3 and 6 hours; 10, 20 and 30 hours.
    assert t.median_first_contact == timedelta(hours=2, minutes=30)
    assert t.median_resolution == timedelta(hours=20)
    assert (t.recovered, t.checkins_answered, t.recovery_rate) == (2, 3, 66.7)


def test_it_counts_only_a_managers_own_teams(example):
    t = reports.followups_report(user=example["sora"]).totals

    assert (t.followups, t.open, t.overdue, t.resolved) == (4, 2, 1, 2)
    assert (t.first_contact_met, t.first_contact_measured) == (2, 3)
    assert t.first_contact_share == 66.7
    assert (t.resolution_met, t.resolution_measured) == (1, 3)
    assert t.median_first_contact == timedelta(hours=3)
    assert t.median_resolution == timedelta(hours=20)
    assert (t.recovered, t.checkins_answered, t.recovery_rate) == (1, 2, 50.0)


def test_it_breaks_the_figures_down_by_team_owner_root_cause_and_week(example):
    report = reports.followups_report(user=staff_user())

    teams = {row.label: row.figures for row in report.by_team}
    assert list(teams) == ["Busan", "Seoul"]
    assert (teams["Busan"].followups, teams["Busan"].resolution_share) == (2, 50.0)
    assert teams["Busan"].median_first_contact == timedelta(hours=2)
    assert (teams["Seoul"].followups, teams["Seoul"].overdue) == (4, 1)

    owners = {row.label: row.figures.followups for row in report.by_owner}
    assert owners == {"ahn": 3, "baek": 2, "sora": 1}
    assert [row.key for row in report.by_owner] == [
        example[name].pk for name in ("ahn", "baek", "sora")
    ]

    causes = {row.label: row.figures for row in report.by_root_cause}
    assert list(causes) == [
        "Product or quality",
        "Delivery or availability",
        "Not resolved",
    ]
    assert causes["Delivery or availability"].median_resolution == timedelta(hours=20)
    assert causes["Not resolved"].followups == 3

    t0_week = iso_week(example["t0"])
    now_week = iso_week(example["now"] - H)
    weeks = {row.key: row.figures.followups for row in report.by_week}
    assert weeks == {t0_week: 5, now_week: 1}
    assert [row.key for row in report.by_week] == [t0_week, now_week]


def test_it_filters_by_period_and_team(example):
    today = timezone.localdate(example["now"] - H)
    recent = reports.followups_report(user=staff_user(), since=today)
    assert recent.totals.followups == 1
    assert recent.totals.overdue == 0

    earlier = reports.followups_report(
        user=staff_user(), until=timezone.localdate(example["t0"])
    )
    assert earlier.totals.followups == 5

    busan = reports.followups_report(user=staff_user(), team=example["busan"])
    assert (busan.totals.followups, busan.totals.first_contact_share) == (2, 50.0)
    assert [row.label for row in busan.by_team] == ["Busan"]


def test_it_keeps_the_same_figures_without_percentile_cont(example, monkeypatch):
    """SQLite (`make run`) has no percentile_cont: Python takes the medians."""
    on_postgres = reports.followups_report(user=staff_user())
    monkeypatch.setattr(reports, "_has_percentile", lambda: False)

    fallback = reports.followups_report(user=staff_user())

    assert fallback == on_postgres


def test_it_reads_a_fixed_number_of_queries_however_many_followups(
    example, django_assert_num_queries
):
    user = staff_user()
    with django_assert_num_queries(5) as few:
        reports.followups_report(user=user)
    for _ in range(3):
        followup(team=example["busan"], owner=example["baek"], opened=example["t0"])
    followup(team=None, owner=None, opened=example["now"] - 60 * 24 * H)

    with django_assert_num_queries(len(few.captured_queries)):
        report = reports.followups_report(user=user)
    assert report.totals.followups == 10


def test_it_reports_nothing_as_dashes_not_zero_shares():
    t = reports.followups_report(user=staff_user()).totals

    assert t.followups == 0
    assert t.first_contact_share is None and t.recovery_rate is None
    assert t.median_resolution is None


# The page and its CSV


def test_it_shows_the_reports_page_to_a_manager(client, example):
    client.force_login(example["sora"])

    r = client.get("/followups/reports/")

    assert r.status_code == 200
    html = r.content.decode()
    assert 'id="first-contact-sla"' in html
    assert "66.7 %" in html
    assert "Busan" not in html  # another team's
    assert 'href="/followups/reports/"' in html  # in the navigation


def test_it_lets_a_team_manager_outside_the_managers_group_see_reports(example):
    lead = agent(username="lead")
    team = make_team("Jeju", [lead], manager=lead)
    followup(team=team, owner=lead, opened=example["t0"], contacted_after=H)
    from django.test import Client

    client = Client()
    client.force_login(lead)

    r = client.get("/followups/reports/")

    assert r.status_code == 200
    assert r.context["report"].totals.followups == 1


def test_it_refuses_the_reports_to_agents_and_outsiders(client, example):
    client.force_login(example["ahn"])
    r = client.get("/followups/reports/")
    assert r.status_code == 403
    assert client.get("/followups/reports/csv/").status_code == 403
    # And the navigation does not offer them.
    assert (
        'href="/followups/reports/"' not in client.get("/followups/").content.decode()
    )

    client.force_login(UserFactory())
    assert client.get("/followups/reports/").status_code == 403


def test_it_sends_anonymous_visitors_to_log_in(client):
    r = client.get("/followups/reports/")

    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    "query",
    [
        "since=2026-05-02&until=2026-05-01",
        "since=yesterday",
        "team=abc",
        "until=2026-13-01",
    ],
)
def test_it_says_what_is_wrong_with_a_bad_filter(client, example, query):
    client.force_login(example["sora"])

    r = client.get(f"/followups/reports/?{query}")

    assert r.status_code == 400
    assert r.context["form"].errors
    assert client.get(f"/followups/reports/csv/?{query}").status_code == 400


def test_it_refuses_another_teams_filter_to_a_manager(client, example):
    client.force_login(example["sora"])

    r = client.get(f"/followups/reports/?team={example['busan'].pk}")

    assert r.status_code == 400
    assert "team" in r.context["form"].errors


def test_it_shows_the_reports_in_korean(client, example):
    client.force_login(example["sora"])

    r = client.get("/followups/reports/", HTTP_ACCEPT_LANGUAGE="ko")

    html = r.content.decode()
    assert "후속 조치 보고서" in html
    assert "배송 또는 재고" in html  # the root cause's Korean name


def test_it_exports_the_breakdowns_as_csv(client, example):
    client.force_login(staff_user())
    busan = example["busan"]
    Team.objects.filter(pk=busan.pk).update(name="=HYPERLINK(1)")

    r = client.get("/followups/reports/csv/?since=2000-01-01")

    assert r.status_code == 200
    assert r["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    assert rows[0]["breakdown"] == "total"
    assert rows[0]["followups"] == "6"
    assert rows[0]["first_contact_share"] == "60.0"
    assert rows[0]["median_first_contact_seconds"] == "9000.0"
    breakdowns = {row["breakdown"] for row in rows}
    assert breakdowns == {"total", "team", "owner", "root_cause", "week"}
    team_rows = {row["name"]: row for row in rows if row["breakdown"] == "team"}
    # A name a spreadsheet would run as a formula is kept as text.
    assert team_rows["'=HYPERLINK(1)"]["key"] == str(busan.pk)
    cause = next(
        r
        for r in rows
        if r["key"] == str(RootCause.objects.get(code="product").pk)
        and r["breakdown"] == "root_cause"
    )
    assert cause["resolved"] == "1"


def test_it_links_the_csv_with_the_same_filters(client, example):
    client.force_login(example["sora"])

    r = client.get("/followups/reports/?since=2026-01-01")

    assert 'href="/followups/reports/csv/?since=2026-01-01"' in r.content.decode()


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (None, "—"),
        (timedelta(minutes=12, seconds=40), "12 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(hours=3, minutes=20), "3 h 20 min"),
        (timedelta(days=2), "2 d"),
        (timedelta(days=2, hours=4, minutes=59), "2 d 4 h"),
    ],
)
def test_it_writes_a_median_as_people_read_it(duration, text):
    assert reports.duration_text(duration) == text
