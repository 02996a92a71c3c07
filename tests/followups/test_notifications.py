"""
Celery keeps everyone honest: reminders before each SLA is due, two breach levels,
a daily digest per agent in their language, Slack posts per team, each sent once.
"""

import json
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient

from cxm.followups.models import (
    EventKind,
    FollowUp,
    FollowUpDigest,
    FollowUpNotice,
    FollowUpRule,
    NoticeKind,
    StaffProfile,
    Team,
)
from cxm.followups.services import (
    followup_digests_send,
    followup_log_contact,
    followup_reopen,
    followup_resolve,
    followups_sweep,
    team_save,
    team_validate,
)
from surveys.services import response_record
from tests.factories import CustomerFactory, InvitationFactory, agent, manager

pytestmark = pytest.mark.django_db

SEOUL = ZoneInfo("Asia/Seoul")


def make_team(name="Seoul", members=(), manager=None, **fields) -> Team:
    return team_save(team=Team(name=name, manager=manager, **fields), members=members)


def route_nps_to(team, **fields):
    FollowUpRule.objects.filter(survey_kind="nps").update(team=team, **fields)


def detractor(score=2, customer=None) -> FollowUp:
    invitation = InvitationFactory(customer=customer or CustomerFactory())
    return response_record(invitation=invitation, score=score).followup


def kinds(followup) -> list[str]:
    return list(followup.events.order_by("pk").values_list("kind", flat=True))


def subjects(mailoutbox, start: str) -> list[str]:
    return [m.subject for m in mailoutbox if m.subject.startswith(start)]


def reminders(mailoutbox):
    return [
        m for m in mailoutbox if m.extra_headers["X-Cxm-Email"].endswith("reminder")
    ]


# Reminders before an SLA is due


def test_it_reminds_the_owner_once_before_the_resolution_is_due(mailoutbox):
    owner = agent()
    followup = detractor()
    before = followup.due_at - timedelta(hours=3)  # within the default 4 hours

    results = [followups_sweep(now=before + timedelta(minutes=i)) for i in range(3)]

    assert [r["reminded"] for r in results] == [1, 0, 0]
    [message] = reminders(mailoutbox)
    assert message.to == [owner.email]
    assert message.subject == f"Reminder: follow-up #{followup.pk} is due soon"
    assert followup.link in message.body
    followup.refresh_from_db()
    assert followup.resolution_reminded_for == followup.due_at
    [event] = followup.events.filter(kind=EventKind.REMINDED)
    assert event.description() == f"Resolution due soon: {owner.email}"


def test_it_does_not_remind_before_the_lead_time(settings, mailoutbox):
    settings.FOLLOWUP_REMIND_BEFORE_HOURS = 2
    agent()
    followup = detractor()

    result = followups_sweep(now=followup.due_at - timedelta(hours=3))

    assert result["reminded"] == 0
    assert reminders(mailoutbox) == []


def test_it_sends_no_reminder_when_the_lead_time_is_zero(settings, mailoutbox):
    settings.FOLLOWUP_REMIND_BEFORE_HOURS = 0
    agent()
    followup = detractor()

    result = followups_sweep(now=followup.due_at - timedelta(minutes=1))

    assert result["reminded"] == 0
    assert reminders(mailoutbox) == []


def test_it_reminds_of_the_first_contact_only_while_nobody_contacted(mailoutbox):
    owner = agent()
    FollowUpRule.objects.filter(survey_kind="nps").update(first_contact_sla_hours=8)
    waiting, contacted = detractor(), detractor()
    followup_log_contact(followup=contacted, actor=owner, channel="phone")
    now = waiting.first_contact_due_at - timedelta(hours=1)

    result = followups_sweep(now=now)

    assert result["reminded"] == 1
    [message] = reminders(mailoutbox)
    assert message.subject == (
        f"Reminder: contact the customer of follow-up #{waiting.pk} soon"
    )
    waiting.refresh_from_db()
    assert waiting.first_contact_reminded_for == waiting.first_contact_due_at
    assert waiting.resolution_reminded_for is None
    contacted.refresh_from_db()
    assert contacted.first_contact_reminded_for is None


def test_it_reminds_again_when_a_reopen_moves_the_due_time(mailoutbox):
    owner = agent()
    followup = detractor()
    followups_sweep(now=followup.due_at - timedelta(hours=1))
    followup_resolve(
        followup=followup, actor=owner, resolution="Refunded", root_cause="other"
    )
    followup = followup_reopen(followup=followup, actor=owner, note="Still broken")

    again = followups_sweep(now=followup.due_at - timedelta(hours=1))

    assert again["reminded"] == 1
    assert len(reminders(mailoutbox)) == 2
    assert kinds(followup).count(EventKind.REMINDED) == 2


def test_it_does_not_remind_of_a_resolved_followup(mailoutbox):
    owner = agent()
    followup = detractor()
    followup_resolve(
        followup=followup, actor=owner, resolution="Refunded", root_cause="other"
    )

    result = followups_sweep(now=followup.due_at - timedelta(hours=1))

    assert result["reminded"] == 0
    assert reminders(mailoutbox) == []


def test_it_does_not_remind_an_owner_given_it_within_the_lead_time(mailoutbox):
    agent()
    FollowUpRule.objects.filter(survey_kind="nps").update(resolution_sla_hours=2)
    followup = detractor()

    result = followups_sweep(now=followup.due_at - timedelta(hours=1))

    assert result["reminded"] == 0
    assert reminders(mailoutbox) == []


def test_it_reminds_the_owner_in_their_language(mailoutbox):
    owner = agent()
    StaffProfile.objects.create(user=owner, language="ko")
    followup = detractor()

    followups_sweep(now=followup.due_at - timedelta(hours=1))

    [message] = reminders(mailoutbox)
    assert message.subject == f"알림: 후속 조치 #{followup.pk}의 기한이 곧 다가옵니다"
    assert "고객" in message.body


# The second breach level


def test_it_escalates_a_second_time_after_the_configured_hours(settings, mailoutbox):
    settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS = 24
    settings.FOLLOWUP_ESCALATE_AGAIN_TO = ["coo@cx.example.com"]
    boss = manager()
    team = make_team(members=[agent()], manager=boss)
    route_nps_to(team)
    followup = detractor()
    due = followup.due_at

    first = followups_sweep(now=due + timedelta(minutes=1))
    early = followups_sweep(now=due + timedelta(hours=23))
    late = [followups_sweep(now=due + timedelta(hours=24, minutes=i)) for i in (1, 2)]

    assert (first["escalated"], first["escalated_again"]) == (1, 0)
    assert early["escalated_again"] == 0
    assert [r["escalated_again"] for r in late] == [1, 0]
    assert [m.to for m in mailoutbox if m.subject.startswith("Overdue")] == [
        [boss.email]
    ]
    [again] = [m for m in mailoutbox if m.subject.startswith("Still overdue")]
    assert again.to == ["coo@cx.example.com"]
    assert "24 hours past its due time" in again.body
    followup.refresh_from_db()
    assert followup.escalated_at < followup.escalated_again_at
    [event] = followup.events.filter(kind=EventKind.ESCALATED_AGAIN)
    assert event.text == "coo@cx.example.com"


def test_the_api_shows_when_a_followup_was_escalated_again(settings):
    settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS = 1
    boss = manager()
    followup = detractor()
    followups_sweep(now=followup.due_at + timedelta(minutes=1))
    followups_sweep(now=followup.due_at + timedelta(hours=2))
    client = APIClient()
    client.force_authenticate(boss)

    data = client.get(f"/api/followups/{followup.pk}/").json()

    followup.refresh_from_db()
    assert data["escalated_again_at"] == followup.escalated_again_at.isoformat(
        timespec="microseconds"
    ).replace("+00:00", "Z")


def test_it_escalates_again_to_the_cx_managers_without_a_list(settings, mailoutbox):
    settings.FOLLOWUP_ESCALATE_AGAIN_TO = []
    bosses = [manager(), manager()]
    followup = detractor()
    followups_sweep(now=followup.due_at + timedelta(minutes=1))

    followups_sweep(now=followup.due_at + timedelta(hours=25))

    [again] = [m for m in mailoutbox if m.subject.startswith("Still overdue")]
    assert again.to == [b.email for b in bosses]


def test_a_reopened_followup_can_reach_the_second_level_again(settings):
    settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS = 1
    owner = agent()
    manager()
    followup = detractor()
    followups_sweep(now=followup.due_at + timedelta(minutes=1))
    followups_sweep(now=followup.due_at + timedelta(hours=2))
    followup_resolve(followup=followup, actor=owner, resolution="x", root_cause="other")

    followup = followup_reopen(followup=followup, actor=owner)

    assert followup.escalated_at is None and followup.escalated_again_at is None
    result = followups_sweep(now=followup.due_at + timedelta(hours=2))
    assert (result["escalated"], result["escalated_again"]) == (1, 1)
    assert kinds(followup).count(EventKind.ESCALATED_AGAIN) == 2


# The daily digest


def at_local(hour: int, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=SEOUL)


@pytest.fixture
def seoul_digest(settings):
    settings.TIME_ZONE = "Asia/Seoul"
    settings.FOLLOWUP_DIGEST_HOUR = 8
    timezone.activate(SEOUL)
    yield
    timezone.deactivate()


def digests(mailoutbox):
    return [
        m for m in mailoutbox if m.extra_headers["X-Cxm-Email"] == "followup-digest"
    ]


def test_it_sends_each_agent_with_open_followups_one_digest_a_day(
    seoul_digest, mailoutbox
):
    a, b, idle = agent(), agent(), agent()
    for _ in range(3):
        detractor()  # to a, b and idle in turn
    FollowUp.objects.filter(owner=idle).update(owner=a)
    mailoutbox.clear()

    runs = [
        followup_digests_send(now=at_local(8, 27) + timedelta(minutes=i))
        for i in range(3)
    ]
    tomorrow = followup_digests_send(now=at_local(9, 28))

    assert runs == [2, 0, 0]
    assert tomorrow == 2
    sent = digests(mailoutbox)
    assert sorted(m.to[0] for m in sent) == sorted([a.email, a.email, b.email, b.email])
    assert idle.email not in {m.to[0] for m in sent}
    first_of_a = next(m for m in sent if m.to == [a.email])
    a_followups = FollowUp.objects.filter(owner=a)
    assert first_of_a.subject == "Your follow-ups on 2026-11-27: 2 open, 0 overdue"
    for followup in a_followups:
        assert followup.link in first_of_a.body
    assert FollowUpDigest.objects.filter(user=a).count() == 2


def test_it_sends_no_digest_before_the_digest_hour(seoul_digest, mailoutbox):
    agent()
    detractor()
    mailoutbox.clear()

    assert followup_digests_send(now=at_local(7)) == 0
    assert digests(mailoutbox) == []
    assert not FollowUpDigest.objects.exists()


def test_it_sends_no_digest_when_digests_are_off(seoul_digest, settings, mailoutbox):
    settings.FOLLOWUP_DIGEST_HOUR = None
    agent()
    detractor()
    mailoutbox.clear()

    assert followup_digests_send(now=at_local(12)) == 0
    assert digests(mailoutbox) == []


def test_it_sends_no_digest_to_an_agent_with_nothing_open(seoul_digest, mailoutbox):
    owner = agent()
    followup = detractor()
    followup_resolve(followup=followup, actor=owner, resolution="x", root_cause="other")
    mailoutbox.clear()

    assert followup_digests_send(now=at_local(8)) == 0
    assert digests(mailoutbox) == []


def test_it_lists_overdue_and_due_soon_followups_first(seoul_digest, mailoutbox):
    owner = agent()
    calm, soon, late = detractor(), detractor(), detractor()
    now = at_local(8)
    FollowUp.objects.filter(pk=calm.pk).update(due_at=now + timedelta(days=3))
    FollowUp.objects.filter(pk=soon.pk).update(due_at=now + timedelta(hours=5))
    FollowUp.objects.filter(pk=late.pk).update(due_at=now - timedelta(hours=1))
    mailoutbox.clear()

    followup_digests_send(now=now)

    [message] = digests(mailoutbox)
    assert message.to == [owner.email]
    assert message.subject == "Your follow-ups on 2026-11-27: 3 open, 1 overdue"
    body = message.body
    assert "Due within a day: 1" in body
    assert body.index(f"#{late.pk} [Overdue]") < body.index(f"#{soon.pk} [Due soon]")
    assert body.index(f"#{soon.pk} [Due soon]") < body.index(f"#{calm.pk} ")
    html = message.alternatives[0][0]
    assert html.index(late.link) < html.index(soon.link) < html.index(calm.link)


def test_it_lists_the_teams_unowned_followups_for_its_members(seoul_digest, mailoutbox):
    member, outsider = agent(), agent()
    team = make_team(members=[member])
    route_nps_to(team, assignment="nobody")
    unowned = detractor()
    FollowUp.objects.exclude(pk=unowned.pk).delete()
    mailoutbox.clear()

    followup_digests_send(now=at_local(8))

    [message] = digests(mailoutbox)
    assert message.to == [member.email]
    assert unowned.link in message.body
    assert "nobody owns it" in message.body
    assert outsider.email not in [m.to[0] for m in digests(mailoutbox)]


def test_it_sends_the_digest_in_the_agents_language(seoul_digest, mailoutbox):
    owner = agent()
    StaffProfile.objects.create(user=owner, language="ko")
    detractor()
    mailoutbox.clear()

    followup_digests_send(now=at_local(8))

    [message] = digests(mailoutbox)
    assert message.subject == "2026-11-27 후속 조치: 진행 중 1건, 기한 초과 0건"
    assert "기한 초과" in message.body


# Slack


class SlackStandIn(BaseHTTPRequestHandler):
    """Records each post; answers with the next of `statuses` (then 200)."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append(
            (self.path, self.headers["Content-Type"], json.loads(body))
        )
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"invalid_payload")

    def log_message(self, *args):
        pass


@pytest.fixture
def slack(settings):
    settings.SLACK_WEBHOOK_ALLOW_HTTP = True
    server = HTTPServer(("127.0.0.1", 0), SlackStandIn)
    server.posts, server.statuses = [], []
    server.url = f"http://127.0.0.1:{server.server_port}/services/T0/B0/secret"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_it_posts_a_new_high_priority_followup_to_the_teams_slack(
    slack, django_capture_on_commit_callbacks
):
    team = make_team(members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)
    customer = CustomerFactory(name="Kim Minji")

    with django_capture_on_commit_callbacks(execute=True):
        followup = detractor(score=1, customer=customer)

    [(path, content_type, payload)] = slack.posts
    assert path == "/services/T0/B0/secret"
    assert content_type == "application/json"
    assert payload == {
        "text": "\n".join(
            [
                f"*New high-priority follow-up #{followup.pk}* (Seoul)",
                f"Customer: Kim Minji &lt;{customer.email}&gt;",
                "Score: 1",
                f"Owner: {followup.owner}",
                f"<{followup.link}|Open the follow-up>",
            ]
        )
    }
    notice = FollowUpNotice.objects.get(followup=followup)
    assert notice.kind == NoticeKind.SLACK_OPENED and notice.sent_at is not None
    assert followup.events.filter(kind=EventKind.NOTIFIED, text="Slack").exists()


def test_it_does_not_post_a_normal_priority_followup(
    slack, django_capture_on_commit_callbacks
):
    team = make_team(members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)

    with django_capture_on_commit_callbacks(execute=True):
        detractor(score=5)

    assert slack.posts == []
    assert not FollowUpNotice.objects.exists()


def test_it_posts_a_breach_once_however_often_the_sweep_runs(slack):
    team = make_team(members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)
    followup = detractor(score=5)
    now = followup.due_at + timedelta(minutes=1)

    results = [followups_sweep(now=now + timedelta(minutes=i)) for i in range(3)]

    assert [r["notices"] for r in results] == [1, 0, 0]
    [(_path, _type, payload)] = slack.posts
    assert payload["text"].startswith(f"*Follow-up #{followup.pk} missed its SLA*")
    assert "> " not in payload["text"]  # no comment


def test_it_escapes_what_slack_reads_as_markup(slack):
    team = make_team(members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)
    invitation = InvitationFactory()
    response = response_record(
        invitation=invitation, score=5, comment="<!channel> prices & fees"
    )
    followups_sweep(now=response.followup.due_at + timedelta(minutes=1))

    [(_path, _type, payload)] = slack.posts
    assert "> &lt;!channel&gt; prices &amp; fees" in payload["text"]


def test_it_retries_a_failed_slack_post_and_never_fails_the_answer(
    slack, django_capture_on_commit_callbacks
):
    slack.statuses = [500]
    team = make_team(members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)

    with django_capture_on_commit_callbacks(execute=True):
        followup = detractor(score=0)

    assert FollowUp.objects.filter(pk=followup.pk).exists()
    notice = FollowUpNotice.objects.get(followup=followup)
    assert (notice.sent_at, notice.attempts) == (None, 1)
    assert notice.due_at > timezone.now()  # waits before the next try
    assert followups_sweep(now=timezone.now())["notices"] == 0

    result = followups_sweep(now=notice.due_at + timedelta(minutes=5))

    assert result["notices"] == 1
    assert len(slack.posts) == 2  # the failed try and the one that went through
    notice.refresh_from_db()
    assert notice.sent_at is not None and notice.attempts == 1


def test_it_marks_a_slack_notice_done_when_the_team_dropped_its_webhook(slack):
    team = make_team(members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)
    followup = detractor(score=0)
    Team.objects.filter(pk=team.pk).update(slack_webhook_url="")

    followups_sweep(now=timezone.now() + timedelta(minutes=5))

    assert slack.posts == []
    assert FollowUpNotice.objects.get(followup=followup).sent_at is not None


def test_it_takes_only_https_slack_webhooks_in_production(settings):
    settings.SLACK_WEBHOOK_ALLOW_HTTP = False
    for url in ("http://hooks.slack.com/services/x", "ftp://x", "https://"):
        with pytest.raises(ValidationError) as e:
            team_validate(Team(name="Seoul", slack_webhook_url=url))
        assert e.value.message_dict["slack_webhook_url"] == [
            "Give an https:// address, such as Slack's hooks.slack.com one."
        ]
    team_validate(Team(name="Seoul", slack_webhook_url="https://hooks.slack.com/x"))
    settings.SLACK_WEBHOOK_ALLOW_HTTP = True
    team_validate(Team(name="Seoul", slack_webhook_url="http://127.0.0.1:9/x"))


def test_the_admin_saves_a_teams_webhook_and_refuses_a_bad_one(settings, client):
    settings.SLACK_WEBHOOK_ALLOW_HTTP = False
    admin = agent(is_staff=True, is_superuser=True)
    client.force_login(admin)
    form = {
        "name": "Seoul",
        "time_zone": "Asia/Seoul",
        "workday_start": "09:00",
        "workday_end": "18:00",
        "workdays": "[0, 1, 2, 3, 4]",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }

    refused = client.post(
        "/admin/followups/team/add/",
        {**form, "slack_webhook_url": "http://hooks.slack.com/services/x"},
    )
    saved = client.post(
        "/admin/followups/team/add/",
        {**form, "slack_webhook_url": "https://hooks.slack.com/services/x"},
    )

    assert refused.status_code == 200
    assert "Give an https:// address" in refused.content.decode()
    assert saved.status_code == 302
    assert Team.objects.get().slack_webhook_url == "https://hooks.slack.com/services/x"


def test_the_admin_edits_a_users_email_language(client):
    admin = agent(is_staff=True, is_superuser=True)
    someone = agent()
    client.force_login(admin)

    page = client.get(f"/admin/auth/user/{someone.pk}/change/")

    assert page.status_code == 200
    assert "follow-up emails and the daily digest" in page.content.decode()


# Each step scans its due-time column through a partial index


# The sweep's partial indexes: unresolved rows only, by a due time. Which one a
# step's scan takes is the planner's call, from the table's statistics.
SWEEP_INDEXES = ("followup_unresolved_due", "followup_first_contact_due")


@pytest.mark.parametrize(
    "step",
    [{"reminded": "resolution"}, {"reminded": "first_contact"}, {"escalated_again": 1}],
)
def test_each_sweep_step_scans_through_a_partial_index(step):
    from cxm.followups import services

    now = timezone.now()
    # Each scan in the sweep's order (services.followups_sweep): soonest due first.
    if "reminded" in step:
        due, _reminded, _extra = services.REMINDERS[step["reminded"]]
        qs = FollowUp.objects.filter(services._remind_q(step["reminded"], now))
    else:
        due = "due_at"
        qs = FollowUp.objects.filter(services._escalate_again_q(now))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = qs.order_by(due).explain()

    assert any(index in plan for index in SWEEP_INDEXES), plan


# Two sweeps at once


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_nothing_twice(settings, mailoutbox, slack):
    settings.FOLLOWUP_ESCALATE_AGAIN_AFTER_HOURS = 1
    boss = manager()
    team = make_team(members=[agent(), agent()], manager=boss)
    team = make_team("Busan", members=[agent()], slack_webhook_url=slack.url)
    route_nps_to(team)
    # Committed: the owner emails and the two Slack posts of the new high-priority
    # follow-ups (scores 0 and 3) went out already.
    followups = [detractor(score=s) for s in (0, 3, 5, 6)]
    assert len(slack.posts) == 2
    mailoutbox.clear()
    slack.posts.clear()
    late = max(f.due_at for f in followups) + timedelta(hours=2)
    soon = min(f.due_at for f in followups) - timedelta(hours=1)
    start = threading.Barrier(2)
    results, errors = [], []

    def sweep(now):
        try:
            start.wait()
            results.append(followups_sweep(now=now))
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)
        finally:
            connections.close_all()

    for now in (soon, late, late):
        start.reset()
        threads = [threading.Thread(target=sweep, args=(now,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert sum(r["reminded"] for r in results) == 4
    assert sum(r["escalated"] for r in results) == 4
    assert sum(r["escalated_again"] for r in results) == 4
    sent = [(m.subject, tuple(m.to)) for m in mailoutbox]
    assert len(sent) == len(set(sent)) == 12
    texts = [payload["text"] for _p, _t, payload in slack.posts]
    assert len(texts) == len(set(texts)) == 4  # one per breach


@pytest.mark.django_db(transaction=True)
def test_two_digest_runs_at_once_send_each_agent_one_digest(settings, mailoutbox):
    settings.FOLLOWUP_DIGEST_HOUR = 0
    agents = [agent() for _ in range(3)]
    for _ in agents:
        detractor()
    mailoutbox.clear()
    now = timezone.now()
    start = threading.Barrier(2)
    counts = []

    def run():
        try:
            start.wait()
            counts.append(followup_digests_send(now=now))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(counts) == 3
    assert sorted(m.to[0] for m in digests(mailoutbox)) == sorted(
        a.email for a in agents
    )
    assert FollowUpDigest.objects.count() == 3
