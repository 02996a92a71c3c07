"""
The daily rollups (surveys/rollups.py): after every kind of write (answers,
changed answers, moved and deleted ones, deliveries, bounces, a deleted customer
and campaign) each figure read from a rollup equals the same figure read from the
rows; the days are the site's zone's; what a rollup cannot answer reads the rows.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cxm.customers.services import customer_delete
from surveys import metrics, rollups
from surveys.models import (
    DailyDelivery,
    DailyScore,
    Invitation,
    InvitationStatus,
    Response,
)
from surveys.services import campaign_delete, response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
)

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
SCORES = {
    "nps": (0, 3, 6, 7, 8, 9, 10, 10),
    "csat": (1, 2, 3, 4, 5, 5),
    "ces": (1, 4, 5, 7, 7),
}


def answered(campaign, score, when):
    response = response_record(
        invitation=InvitationFactory(campaign=campaign, customer=CustomerFactory()),
        score=score,
    )
    Response.objects.filter(pk=response.pk).update(created_at=when)
    Invitation.objects.filter(pk=response.invitation_id).update(
        sent_at=when - timedelta(hours=2)
    )
    return response


@pytest.fixture
def history():
    """Three kinds' campaigns answered over six weeks, then changed in every way
    the rollups must follow."""
    campaigns = {}
    for kind, scores in SCORES.items():
        survey = SurveyFactory(kind=kind)
        campaign = CampaignFactory(survey=survey)
        campaigns[kind] = campaign
        kept = []
        for n in range(30):
            when = START + timedelta(days=n * 1.4, hours=n % 24)
            kept.append(answered(campaign, scores[n % len(scores)], when))
        # A changed answer (the score moves to another count).
        response_record(invitation=kept[0].invitation, score=scores[-1])
        # A moved one, a customer gone with their answer, a bounce after sending.
        Response.objects.filter(pk=kept[1].pk).update(
            created_at=START + timedelta(days=9)
        )
        customer_delete(customer=kept[2].customer)
        Invitation.objects.filter(pk=kept[3].invitation_id).update(
            status=InvitationStatus.BOUNCED
        )
        # Delivered, never answered.
        for n in range(7):
            InvitationFactory(
                campaign=campaign,
                status=InvitationStatus.SENT,
                sent_at=START + timedelta(days=n * 5, hours=3),
            )
    # A whole campaign deleted with its answers.
    doomed = CampaignFactory(survey=campaigns["nps"].survey)
    for n in range(5):
        answered(doomed, n, START + timedelta(days=n))
    campaign_delete(campaign=doomed)
    return campaigns


def figures(kind, campaign=None):
    since, until = START - timedelta(days=7), START + timedelta(days=56)
    middle = START + timedelta(days=21)
    filters = {"campaign": campaign}
    return {
        "weekly": metrics.trend(
            kind, interval="week", since=since, until=until, **filters
        ),
        "monthly": metrics.trend(kind, interval="month", **filters),
        "rates": metrics.response_rate_trend(
            kind, interval="week", since=since, until=until, **filters
        ),
        "distribution": metrics.distribution(kind, since=since, until=until, **filters),
        "compare": metrics.compare(
            kind, a=(since, middle), b=(middle, until), **filters
        ).as_dict(),
    }


def rounded(value):
    """Figures with floats rounded (the rollup sums where the rows average)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return rounded(
            {name: getattr(value, name) for name in value.__dataclass_fields__}
        ) | {
            name: rounded(getattr(value, name))
            for name in ("score", "margin_of_error")
            if hasattr(value, name)
        }
    return value


@pytest.mark.parametrize("kind", ["nps", "csat", "ces"])
@pytest.mark.parametrize("one_campaign", [False, True])
def test_every_figure_from_the_rollups_equals_the_figure_from_the_rows(
    history, kind, one_campaign
):
    campaign = history[kind] if one_campaign else None
    with CaptureQueriesContext(connection) as read:
        from_rollups = figures(kind, campaign)
    with rollups.rows_only(), CaptureQueriesContext(connection) as rows_read:
        from_rows = figures(kind, campaign)

    assert rounded(from_rollups) == rounded(from_rows)
    assert from_rows["weekly"].points, "the history has answers to count"
    sql = " ".join(q["sql"] for q in read.captured_queries)
    assert "surveys_dailyscore" in sql and "surveys_dailydelivery" in sql
    assert "surveys_response" not in sql.replace("surveys_responserevision", "")
    rows_sql = " ".join(q["sql"] for q in rows_read.captured_queries)
    assert "surveys_daily" not in rows_sql


def test_a_changed_answer_moves_its_count_to_the_new_score():
    campaign = CampaignFactory(survey=SurveyFactory(kind="nps"))
    response = answered(campaign, 3, START)

    response_record(invitation=response.invitation, score=9)
    rollups.rollups_fold()

    counts = dict(
        DailyScore.objects.filter(campaign_id=campaign.pk).values_list(
            "score", "answers"
        )
    )
    assert counts == {3: 0, 9: 1}


def test_the_days_are_the_zones_days(settings):
    campaign = CampaignFactory(survey=SurveyFactory(kind="nps"))
    # Sunday 20:00 UTC is Monday 05:00 in Seoul.
    answered(campaign, 10, datetime(2026, 1, 4, 20, tzinfo=UTC))
    try:
        rollups.rollup_rebuild(zone="Asia/Seoul")
        assert list(
            DailyScore.objects.values_list("day", "answers").filter(answers__gt=0)
        ) == [(datetime(2026, 1, 5).date(), 1)]
        with timezone.override("Asia/Seoul"):
            since = timezone.make_aware(datetime(2026, 1, 5))
            with CaptureQueriesContext(connection) as read:
                figure = metrics.trend("nps", since=since, until=since + timedelta(7))
            assert "surveys_dailyscore" in read.captured_queries[-1]["sql"]
            assert [
                (p.period.isoformat(), p.metric.responses) for p in figure.points
            ] == [("2026-01-05", 1)]
        # Back in UTC the rollup answers nothing (its days are Seoul's): the rows.
        with CaptureQueriesContext(connection) as read:
            utc = metrics.trend("nps")
        assert "surveys_dailyscore" not in read.captured_queries[-1]["sql"]
        assert [p.period.isoformat() for p in utc.points] == ["2025-12-29"]
    finally:
        rollups.rollup_rebuild(zone=settings.TIME_ZONE)
        rollups.rollup_zone()


def test_migrate_recounts_the_rollups_when_the_time_zone_changed(settings):
    campaign = CampaignFactory(survey=SurveyFactory(kind="nps"))
    answered(campaign, 10, datetime(2026, 1, 4, 20, tzinfo=UTC))
    try:
        rollups.rollup_rebuild(zone="Asia/Seoul")
        rollups.on_post_migrate(sender=None, using="default")
        assert rollups.rollup_zone() == settings.TIME_ZONE
        assert list(
            DailyScore.objects.values_list("day", "answers").filter(answers__gt=0)
        ) == [
            (
                timezone.localtime(
                    datetime(2026, 1, 4, 20, tzinfo=UTC),
                    timezone.get_default_timezone(),
                ).date(),
                1,
            )
        ]
    finally:
        rollups.rollup_rebuild(zone=settings.TIME_ZONE)
        rollups.rollup_zone()


@pytest.mark.parametrize(
    "call",
    [
        lambda: metrics.trend("nps", by="locale"),
        lambda: metrics.trend(
            "nps", since=START + timedelta(hours=5), until=START + timedelta(days=7)
        ),
        lambda: metrics.distribution("nps", properties={"plan": "pro"}),
    ],
    ids=["split by a customer field", "a bound inside a day", "customer properties"],
)
def test_what_a_rollup_cannot_answer_reads_the_rows(call):
    answered(CampaignFactory(survey=SurveyFactory(kind="nps")), 10, START)
    with CaptureQueriesContext(connection) as read:
        call()
    assert "surveys_daily" not in read.captured_queries[-1]["sql"]


def test_another_users_zone_reads_the_rows():
    answered(CampaignFactory(survey=SurveyFactory(kind="nps")), 10, START)
    other = "Asia/Seoul" if settings.TIME_ZONE != "Asia/Seoul" else "UTC"
    with timezone.override(other), CaptureQueriesContext(connection) as read:
        figure = metrics.trend("nps")
    assert "surveys_daily" not in read.captured_queries[-1]["sql"]
    assert figure.points[0].metric.responses == 1


@pytest.mark.django_db(transaction=True)
def test_two_answers_to_one_campaign_on_one_day_never_wait_for_each_other():
    """The triggers append their changes: an answer being written holds no lock
    another answer to the same campaign, day and score would wait for."""
    import psycopg
    from django.db import transaction

    campaign = CampaignFactory(survey=SurveyFactory(kind="nps"))
    sent = timezone.now() - timedelta(hours=1)
    first, second = (
        InvitationFactory(campaign=campaign, status=InvitationStatus.SENT, sent_at=sent)
        for _ in range(2)
    )
    db = connection.settings_dict
    with transaction.atomic():
        response_record(invitation=first, score=3)  # uncommitted while …
        with (
            psycopg.connect(
                host=db["HOST"],
                port=db["PORT"] or 5432,
                user=db["USER"],
                password=db["PASSWORD"] or None,
                dbname=db["NAME"],
                autocommit=True,
            ) as other,
            other.transaction(),
        ):
            # … another answer to the same campaign, day and score is written.
            other.execute("SET LOCAL lock_timeout = '3s'")
            other.execute(
                "UPDATE surveys_invitation SET status = 'answered', "
                "answered_at = now() WHERE id = %s",
                [second.pk],
            )
            other.execute(
                "INSERT INTO surveys_response (invitation_id, campaign_id, "
                "survey_id, customer_id, score, comment, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, 3, '', now(), now())",
                [second.pk, campaign.pk, campaign.survey_id, second.customer_id],
            )
    rollups.rollups_fold()
    assert list(
        DailyScore.objects.filter(campaign_id=campaign.pk).values_list(
            "score", "answers"
        )
    ) == [(3, 2)]
    assert list(
        DailyDelivery.objects.filter(campaign_id=campaign.pk).values_list(
            "invitations", "answered_invitations"
        )
    ) == [(2, 2)]


def test_beat_folds_the_changes_into_the_rollups(settings):
    from surveys.models import DailyScoreChange
    from surveys.tasks import rollups_fold

    assert (
        settings.CELERY_BEAT_SCHEDULE["rollups-fold"]["task"]
        == "surveys.tasks.rollups_fold"
    )
    campaign = CampaignFactory(survey=SurveyFactory(kind="nps"))
    answered(campaign, 10, START)
    assert DailyScoreChange.objects.exists()

    rollups_fold.delay()

    assert not DailyScoreChange.objects.exists()
    assert DailyScore.objects.get(campaign_id=campaign.pk, answers__gt=0).score == 10
