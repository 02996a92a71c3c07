"""Campaign schedules: when each kind of schedule makes its invitations due."""

import threading
import zoneinfo
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from cxm.customers.models import Interaction
from cxm.customers.services import customer_unsubscribe, interaction_record
from surveys.models import Campaign, CampaignStatus, Invitation, InvitationStatus
from surveys.schedules import SpreadPlan, customer_zone
from surveys.services import (
    campaign_pause,
    campaign_resume,
    campaign_send,
    campaign_stop,
    campaign_update,
    campaigns_sweep,
    invitations_enqueue,
)
from tests.factories import CampaignFactory, CustomerFactory, property_segment

pytestmark = pytest.mark.django_db

SEOUL = zoneinfo.ZoneInfo("Asia/Seoul")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# A Monday, months ahead of the tests' real clock, so nothing they schedule is due.
MONDAY = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)


def customers_in(zone_name: str, count: int, **properties):
    return [
        CustomerFactory(properties={"timezone": zone_name, **properties})
        for _ in range(count)
    ]


def due_times(campaign, wave=1):
    return list(
        Invitation.objects.filter(campaign=campaign, wave=wave)
        .order_by("due_at")
        .values_list("due_at", flat=True)
    )


# Now and at a time


def test_it_sends_now_by_default(django_capture_on_commit_callbacks):
    CustomerFactory.create_batch(3)
    campaign = CampaignFactory()

    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_send(campaign=campaign) == 3

    assert Invitation.objects.filter(status=InvitationStatus.SENT).count() == 3


def test_it_sends_now_whatever_start_time_is_left_from_another_schedule():
    CustomerFactory()
    campaign = CampaignFactory(schedule="now", starts_at=MONDAY)
    sent = timezone.now()

    campaign_send(campaign=campaign, now=sent)

    assert due_times(campaign) == [sent]


def test_it_makes_invitations_due_at_the_time_given_and_enqueues_none_before(
    django_capture_on_commit_callbacks,
):
    CustomerFactory.create_batch(3)
    at = MONDAY + timedelta(hours=9)
    campaign = CampaignFactory(schedule="at", starts_at=at)

    with django_capture_on_commit_callbacks(execute=True):
        assert campaign_send(campaign=campaign) == 3

    assert due_times(campaign) == [at] * 3
    assert Invitation.objects.filter(status=InvitationStatus.QUEUED).count() == 3
    assert invitations_enqueue(now=at - timedelta(seconds=1)) == 0
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENDING


def test_it_refuses_to_send_at_a_time_that_has_passed():
    CustomerFactory()
    campaign = CampaignFactory(
        schedule="at", starts_at=timezone.now() - timedelta(minutes=1)
    )

    with pytest.raises(ValidationError) as error:
        campaign_send(campaign=campaign)

    assert "has passed" in str(error.value)
    assert not Invitation.objects.exists()


# Spread over a window


def test_it_spreads_invitations_over_weekday_mornings_in_each_customers_zone():
    # Imported one city after the other: each still gets every day's share.
    seoul = customers_in("Asia/Seoul", 40)
    new_york = customers_in("America/New_York", 40)
    campaign = CampaignFactory(
        schedule="spread",
        starts_at=MONDAY,
        window_days=10,
        window_weekdays=[1, 2, 3, 4, 5],
        window_start_hour=9,
        window_end_hour=11,
    )

    campaign_send(campaign=campaign, now=MONDAY - timedelta(days=1))

    # The 10 days run from the start's date there: Monday 1 March in Seoul (8
    # weekdays), Sunday 28 February in New York (7 weekdays).
    for customers, zone, weekdays in ((seoul, SEOUL, 8), (new_york, NEW_YORK, 7)):
        local = [
            i.due_at.astimezone(zone)
            for i in Invitation.objects.filter(customer__in=customers)
        ]
        assert all(t.isoweekday() <= 5 for t in local)
        assert all(9 <= t.hour < 11 for t in local)
        assert all(t >= MONDAY for t in local)
        assert all(t < MONDAY + timedelta(days=10) for t in local)
        per_day = Counter(t.date() for t in local)
        assert len(per_day) == weekdays
        assert max(per_day.values()) - min(per_day.values()) <= 1


def test_it_spreads_evenly_over_the_days():
    CustomerFactory.create_batch(50)
    campaign = CampaignFactory(schedule="spread", starts_at=MONDAY, window_days=5)

    campaign_send(campaign=campaign, now=MONDAY)

    per_day = Counter(t.date() for t in due_times(campaign))
    assert sorted(per_day.values()) == [10] * 5


def test_it_uses_the_default_zone_for_a_customer_without_a_valid_one(settings):
    settings.DEFAULT_CUSTOMER_TIMEZONE = "Asia/Seoul"
    customers_in("Not/A_Zone", 1)
    CustomerFactory(properties={"timezone": 9})
    CustomerFactory()
    campaign = CampaignFactory(
        schedule="spread",
        starts_at=MONDAY,
        window_days=1,
        window_start_hour=9,
        window_end_hour=10,
    )

    campaign_send(campaign=campaign, now=MONDAY)

    assert all(t.astimezone(SEOUL).hour == 9 for t in due_times(campaign))
    assert customer_zone("../../etc/passwd") == SEOUL


def test_it_keeps_local_hours_across_a_daylight_saving_change():
    # New York moves its clocks forward on Sunday 2027-03-14.
    customers_in("America/New_York", 40)
    start = datetime(2027, 3, 12, 5, 0, tzinfo=UTC)  # Friday, midnight there
    campaign = CampaignFactory(
        schedule="spread",
        starts_at=start,
        window_days=4,
        window_start_hour=9,
        window_end_hour=11,
    )

    campaign_send(campaign=campaign, now=start)

    times = due_times(campaign)
    assert all(9 <= t.astimezone(NEW_YORK).hour < 11 for t in times)
    offsets = {
        t.astimezone(NEW_YORK).day: t.astimezone(NEW_YORK).utcoffset() for t in times
    }
    # 09:00 in New York is 14:00 UTC before the change, 13:00 after it.
    assert offsets[13] == timedelta(hours=-5)
    assert offsets[15] == timedelta(hours=-4)
    assert Counter(t.astimezone(NEW_YORK).day for t in times) == {
        12: 10,
        13: 10,
        14: 10,
        15: 10,
    }


def test_it_counts_only_the_rest_of_a_window_that_has_begun():
    # Seoul at 10:00 on Monday: that morning's window has an hour left.
    start = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
    plan = SpreadPlan(start=start, days=2, weekdays=[], start_hour=9, end_hour=11)

    times = [plan.due_at(i, SEOUL, total=3).astimezone(SEOUL) for i in range(3)]

    # One hour on Monday, two on Tuesday: a third of the time, a third of them.
    assert times[0].day == 1 and times[0].hour == 10
    assert [t.day for t in times[1:]] == [2, 2]
    assert all(t >= start for t in times)


def test_it_sends_in_the_next_window_when_the_days_hold_none():
    saturday = datetime(2027, 3, 6, 0, 0, tzinfo=UTC)
    plan = SpreadPlan(start=saturday, days=1, weekdays=[1], start_hour=9, end_hour=10)

    due = plan.due_at(0, SEOUL, total=1).astimezone(SEOUL)

    assert (due.isoweekday(), due.hour) == (1, 9)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"schedule": "at"}, "starts_at"),
        ({"schedule": "spread"}, "window_days"),
        (
            {"schedule": "spread", "window_days": 3, "window_start_hour": 9},
            "window_end_hour",
        ),
        (
            {
                "schedule": "spread",
                "window_days": 3,
                "window_start_hour": 9,
                "window_end_hour": 9,
            },
            "window_end_hour",
        ),
        (
            {"schedule": "spread", "window_days": 3, "window_weekdays": [0]},
            "window_weekdays",
        ),
        (
            {"schedule": "spread", "window_days": 3, "window_weekdays": [1, 1]},
            "window_weekdays",
        ),
        (
            {"schedule": "triggered", "trigger_kind": "purchase"},
            "trigger_delay_hours",
        ),
        (
            {
                "schedule": "triggered",
                "trigger_kind": "purchase",
                "trigger_delay_hours": 0,
            },
            "trigger_delay_hours",
        ),
        (
            {
                "schedule": "triggered",
                "trigger_kind": "Big Purchase",
                "trigger_delay_hours": 3,
            },
            "trigger_kind",
        ),
        ({"schedule": "recurring", "recur_every_days": 0}, "recur_every_days"),
    ],
)
def test_it_refuses_a_schedule_that_cannot_work(fields, field):
    campaign = CampaignFactory()

    with pytest.raises(ValidationError) as error:
        campaign_update(campaign=campaign, **fields)

    assert field in error.value.message_dict
    campaign.refresh_from_db()
    assert campaign.schedule == "now"


# Triggered


def triggered_campaign(*, hours=72, **fields):
    campaign = CampaignFactory(
        schedule="triggered",
        trigger_kind="purchase",
        trigger_delay_hours=hours,
        **fields,
    )
    campaign_send(campaign=campaign)
    campaign.refresh_from_db()
    return campaign


def test_it_invites_a_customer_the_delay_after_an_interaction(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory(properties={"plan": "pro"})
    campaign = triggered_campaign(segment=property_segment("plan", "pro"))
    assert campaign.status == CampaignStatus.RUNNING
    occurred = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        interaction, _ = interaction_record(
            customer=jane, kind="purchase", occurred_at=occurred
        )

    invitation = Invitation.objects.get(campaign=campaign)
    assert invitation.customer == jane
    assert invitation.interaction_id == interaction.pk
    assert invitation.due_at == occurred + timedelta(hours=72)
    assert invitation.status == InvitationStatus.QUEUED
    assert invitations_enqueue(now=occurred + timedelta(hours=71)) == 0


def test_it_does_not_trigger_on_other_kinds_customers_or_earlier_interactions(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory(properties={"plan": "pro"})
    outsider = CustomerFactory(properties={"plan": "free"})
    campaign = triggered_campaign(segment=property_segment("plan", "pro"))

    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="support_call")
        interaction_record(customer=outsider, kind="purchase")
        interaction_record(
            customer=jane,
            kind="purchase",
            occurred_at=campaign.starts_at - timedelta(days=1),
        )

    assert not Invitation.objects.filter(campaign=campaign).exists()


def test_it_invites_once_while_an_invitation_waits_and_again_once_it_went(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory()
    campaign = triggered_campaign()

    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="purchase")
        interaction_record(customer=jane, kind="purchase")
    assert Invitation.objects.filter(campaign=campaign).count() == 1

    Invitation.objects.filter(campaign=campaign).update(status=InvitationStatus.SENT)
    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="purchase")
    assert Invitation.objects.filter(campaign=campaign).count() == 2


def test_it_invites_from_the_sweep_when_the_signal_was_lost(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory()
    campaign = triggered_campaign()
    # Recorded, and the process dies before its on-commit callbacks run.
    with django_capture_on_commit_callbacks(execute=False):
        interaction, _ = interaction_record(customer=jane, kind="purchase")
    assert not Invitation.objects.exists()

    assert campaigns_sweep() == 1
    assert campaigns_sweep() == 0

    invitation = Invitation.objects.get(campaign=campaign)
    assert invitation.interaction_id == interaction.pk
    assert invitation.due_at == interaction.occurred_at + timedelta(hours=72)
    campaign.refresh_from_db()
    assert campaign.trigger_watermark == interaction.pk


def test_it_creates_one_invitation_when_signal_and_sweep_both_see_it(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory()
    campaign = triggered_campaign()
    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="purchase")
    Invitation.objects.update(status=InvitationStatus.SENT)  # no longer waiting

    assert campaigns_sweep() == 0
    assert Invitation.objects.filter(campaign=campaign).count() == 1


def test_it_ignores_interactions_recorded_before_it_was_sent():
    jane = CustomerFactory()
    Interaction.objects.create(customer=jane, kind="purchase")
    campaign = triggered_campaign()

    assert campaigns_sweep() == 0
    assert not Invitation.objects.filter(campaign=campaign).exists()


def test_it_invites_nobody_more_once_the_campaign_expired(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory()
    campaign = triggered_campaign(expires_at=timezone.now() + timedelta(days=1))
    Campaign.objects.filter(pk=campaign.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="purchase")

    assert campaigns_sweep() == 0
    assert not Invitation.objects.exists()


# Recurring


def test_it_invites_the_audience_of_the_day_every_n_days():
    jane, ken = CustomerFactory.create_batch(2)
    campaign = CampaignFactory(schedule="recurring", recur_every_days=90)
    sent = timezone.now()
    assert campaign_send(campaign=campaign, now=sent) == 2
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.RUNNING
    assert campaign.next_wave_at == sent + timedelta(days=90)

    assert campaigns_sweep(now=sent + timedelta(days=89)) == 0
    customer_unsubscribe(customer=ken)
    newcomer = CustomerFactory()
    assert campaigns_sweep(now=sent + timedelta(days=90)) == 2
    assert campaigns_sweep(now=sent + timedelta(days=90, hours=1)) == 0

    wave_two = Invitation.objects.filter(campaign=campaign, wave=2)
    assert {i.customer for i in wave_two} == {jane, newcomer}
    campaign.refresh_from_db()
    assert (campaign.wave, campaign.next_wave_at) == (2, sent + timedelta(days=180))


def test_it_creates_one_wave_after_missing_several_and_keeps_its_rhythm():
    CustomerFactory()
    campaign = CampaignFactory(schedule="recurring", recur_every_days=7)
    sent = timezone.now()
    campaign_send(campaign=campaign, now=sent)

    assert campaigns_sweep(now=sent + timedelta(days=30)) == 1

    campaign.refresh_from_db()
    assert campaign.wave == 2
    assert campaign.next_wave_at == sent + timedelta(days=35)


@pytest.mark.django_db(transaction=True)
def test_it_creates_a_wave_once_when_two_sweeps_run_at_once():
    CustomerFactory.create_batch(200)
    campaign = CampaignFactory(schedule="recurring", recur_every_days=30)
    sent = timezone.now()
    campaign_send(campaign=campaign, now=sent)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweep():
        try:
            barrier.wait()
            results.append(campaigns_sweep(now=sent + timedelta(days=30)))
        except Exception as e:  # reported below, not lost in the thread
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert sorted(results) == [0, 200]
    assert Invitation.objects.filter(campaign=campaign, wave=2).count() == 200
    campaign.refresh_from_db()
    assert campaign.wave == 2


# Pause, resume, stop


def test_it_holds_a_paused_campaigns_invitations_until_it_resumes():
    CustomerFactory.create_batch(2)
    campaign = CampaignFactory(schedule="at", starts_at=MONDAY)
    campaign_send(campaign=campaign)
    campaign_pause(campaign=campaign)

    assert invitations_enqueue(now=MONDAY + timedelta(hours=1)) == 0

    campaign = campaign_resume(campaign=campaign)
    assert campaign.status == CampaignStatus.SENDING
    assert invitations_enqueue(now=MONDAY + timedelta(hours=1)) == 2


def test_it_does_not_trigger_while_paused_nor_after_it_stopped(
    django_capture_on_commit_callbacks,
):
    jane = CustomerFactory()
    campaign = triggered_campaign()
    campaign_pause(campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="purchase")
    campaign = campaign_resume(campaign=campaign)
    assert campaign.status == CampaignStatus.RUNNING
    assert campaigns_sweep() == 0

    campaign_stop(campaign=campaign)
    with django_capture_on_commit_callbacks(execute=True):
        interaction_record(customer=jane, kind="purchase")
    assert campaigns_sweep() == 0
    assert not Invitation.objects.exists()
    with pytest.raises(ValidationError):
        campaign_resume(campaign=campaign)
