"""Journeys: ordered stages with their touchpoints, arranged in the admin."""

import pytest
from django.contrib.auth import get_user_model

from journeys.models import Channel, Journey, Stage, Touchpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(
        get_user_model().objects.create_superuser("root", "root@cx.example.com", "x")
    )
    return client


@pytest.fixture
def journey():
    journey = Journey.objects.create(name="Subscriber")
    Stage.objects.create(journey=journey, name="Sign-up", position=1)
    Stage.objects.create(journey=journey, name="Billing", position=2)
    return journey


def test_it_orders_stages_by_position_and_touchpoints_within_a_stage(journey):
    signup, billing = journey.stages.all()
    Touchpoint.objects.create(stage=billing, name="Invoice", channel=Channel.EMAIL)
    Touchpoint.objects.create(
        stage=billing, name="Support call", channel=Channel.PHONE, position=2
    )
    Touchpoint.objects.create(
        stage=billing, name="Pricing page", channel=Channel.WEB, position=1
    )

    assert [s.name for s in journey.stages.all()] == ["Sign-up", "Billing"]
    assert [str(t) for t in billing.touchpoints.all()] == [
        "Invoice (Email)",
        "Pricing page (Web)",
        "Support call (Phone)",
    ]


def test_it_swaps_two_stages_in_the_admin(admin_client, journey):
    """Saved one row at a time, a swap passes through two stages at one position."""
    signup, billing = journey.stages.all()
    r = admin_client.post(
        f"/admin/journeys/journey/{journey.pk}/change/",
        {
            "name": "Subscriber",
            "description": "",
            "stages-TOTAL_FORMS": "2",
            "stages-INITIAL_FORMS": "2",
            "stages-0-id": signup.pk,
            "stages-0-journey": journey.pk,
            "stages-0-name": "Sign-up",
            "stages-0-position": "2",
            "stages-1-id": billing.pk,
            "stages-1-journey": journey.pk,
            "stages-1-name": "Billing",
            "stages-1-position": "1",
        },
    )

    assert r.status_code == 302
    assert [s.name for s in journey.stages.all()] == ["Billing", "Sign-up"]


def test_it_adds_touchpoints_to_a_stage_in_the_admin(admin_client, journey):
    stage = journey.stages.first()
    r = admin_client.post(
        f"/admin/journeys/stage/{stage.pk}/change/",
        {
            "journey": journey.pk,
            "name": stage.name,
            "position": stage.position,
            "touchpoints-TOTAL_FORMS": "1",
            "touchpoints-INITIAL_FORMS": "0",
            "touchpoints-0-name": "Welcome email",
            "touchpoints-0-channel": "email",
            "touchpoints-0-position": "0",
            "touchpoints-0-expected_emotion": "0",
        },
    )

    assert r.status_code == 302
    assert [str(t) for t in stage.touchpoints.all()] == ["Welcome email (Email)"]


def test_it_starts_a_journey_added_in_the_admin_with_the_classic_stages(admin_client):
    r = admin_client.post(
        "/admin/journeys/journey/add/",
        {
            "name": "Shopper",
            "description": "",
            "stages-TOTAL_FORMS": "0",
            "stages-INITIAL_FORMS": "0",
        },
    )

    assert r.status_code == 302, r.content
    journey = Journey.objects.get(name="Shopper")
    assert [s.name for s in journey.stages.all()] == [
        "Awareness",
        "Consideration",
        "Purchase",
        "Use",
        "Loyalty and advocacy",
    ]


def test_it_names_the_classic_stages_in_the_active_language():
    from django.utils import translation

    from journeys.services import journey_create

    with translation.override("ko"):
        journey = journey_create(name="구독 고객")

    assert [s.name for s in journey.stages.all()] == [
        "인지",
        "고려",
        "구매",
        "사용",
        "충성·옹호",
    ]


def test_it_refuses_a_touchpoint_of_another_journey():
    from django.core.exceptions import ValidationError

    from journeys.services import journey_create, journey_update

    other = journey_create(name="Other")
    stranger = Touchpoint.objects.create(
        stage=other.stages.first(), name="Ad", channel=Channel.WEB
    )
    journey = journey_create(name="Mine")

    with pytest.raises(ValidationError):
        journey_update(
            journey=journey,
            stages=[{"name": "S", "touchpoints": [{"id": stranger.pk, "name": "X"}]}],
        )
    stranger.refresh_from_db()
    assert stranger.stage.journey == other
