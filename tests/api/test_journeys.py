"""Journeys over the API: nested stages and touchpoints, personas, and the map."""

import pytest

from journeys.models import Journey, Touchpoint
from tests.factories import CampaignFactory, property_segment
from tests.journeys.test_map import example  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db


def test_it_creates_a_journey_with_the_five_classic_stages(api):
    r = api.post("/api/journeys/", {"name": "Subscriber"}, format="json")

    assert r.status_code == 201, r.content
    assert [s["name"] for s in r.json()["stages"]] == [
        "Awareness",
        "Consideration",
        "Purchase",
        "Use",
        "Loyalty and advocacy",
    ]


def test_it_creates_and_updates_stages_and_touchpoints_nested(api):
    campaign = CampaignFactory()
    segment = property_segment("plan", "pro")
    persona = api.post(
        "/api/personas/", {"name": "Pro user", "segment": segment.pk}, format="json"
    ).json()
    r = api.post(
        "/api/journeys/",
        {
            "name": "Pro",
            "persona": persona["id"],
            "stages": [
                {
                    "name": "Buy",
                    "touchpoints": [
                        {
                            "name": "Checkout",
                            "channel": "web",
                            "interaction_kind": "purchase",
                            "campaigns": [campaign.pk],
                            "expected_emotion": 1,
                        }
                    ],
                },
                {"name": "Use"},
            ],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    body = r.json()
    buy, use = body["stages"]
    checkout = buy["touchpoints"][0]
    assert checkout["campaigns"] == [campaign.pk]
    assert (buy["position"], use["position"]) == (1, 2)

    # Rename a stage, move the checkout to it, drop the other stage.
    r = api.patch(
        f"/api/journeys/{body['id']}/",
        {
            "stages": [
                {
                    "id": use["id"],
                    "name": "Using it",
                    "touchpoints": [{**checkout, "name": "Check-out"}],
                }
            ]
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    journey = Journey.objects.get(pk=body["id"])
    assert [s.name for s in journey.stages.all()] == ["Using it"]
    assert Touchpoint.objects.get().stage.name == "Using it"
    assert Touchpoint.objects.get().name == "Check-out"
    assert journey.persona.segment == segment


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": ""}, "name"),
        ({"name": "X", "stages": [{"name": "S", "id": 999}]}, "detail"),
        (
            {
                "name": "X",
                "stages": [
                    {"name": "S", "touchpoints": [{"name": "T", "channel": "fax"}]}
                ],
            },
            "stages",
        ),
        (
            {
                "name": "X",
                "stages": [
                    {
                        "name": "S",
                        "touchpoints": [
                            {"name": "T", "channel": "web", "interaction_kind": "Bad!"}
                        ],
                    }
                ],
            },
            "stages",
        ),
    ],
)
def test_it_refuses_a_bad_journey_with_a_message(api, body, field):
    r = api.post("/api/journeys/", body, format="json")

    assert r.status_code == 400, r.content
    assert field in r.json()
    assert not Journey.objects.exists()


def test_it_answers_the_map_as_json(api, example):  # noqa: F811
    journey = example["journey"]
    r = api.get(
        f"/api/journeys/{journey.pk}/map/",
        {"since": example["since"].isoformat(), "until": example["until"].isoformat()},
    )

    assert r.status_code == 200, r.content
    body = r.json()
    purchase = body["stages"][2]
    assert (purchase["reached"], purchase["reached_next"], purchase["next_share"]) == (
        3,
        1,
        33.3,
    )
    checkout = purchase["touchpoints"][0]
    assert checkout["metric"] == {
        "score": 0.0,
        "responses": 5,
        "negative": 2,
        "margin_of_error": checkout["metric"]["margin_of_error"],
    }
    assert checkout["change"] == -33.3
    assert body["pain_points"] == [example["checkout"].pk, example["support"].pk]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2025-13-01"},
        {"since": "2025-02-01", "until": "2025-01-01"},
        {"segment": "abc"},
        {"segment": "99999999999999999999999"},
        {"channel": "fax"},
    ],
)
def test_it_refuses_bad_map_filters_with_a_message(api, example, params):  # noqa: F811
    r = api.get(f"/api/journeys/{example['journey'].pk}/map/", params)

    assert r.status_code == 400, r.content
    assert r.json()


def test_it_answers_404_for_a_segment_that_does_not_exist(api, example):  # noqa: F811
    r = api.get(f"/api/journeys/{example['journey'].pk}/map/", {"segment": "12345"})

    assert r.status_code == 404
    assert r.json() == {"detail": "There is no such segment."}


def test_it_answers_409_for_a_persona_name_taken(api):
    assert api.post("/api/personas/", {"name": "Pro"}, format="json").status_code == 201
    r = api.post("/api/personas/", {"name": "Pro"}, format="json")

    assert r.status_code == 409
    assert r.json() == {"name": ["A persona with this name already exists."]}


def test_it_lets_an_agent_read_but_not_write(agent_api, example):  # noqa: F811
    assert agent_api.get("/api/journeys/").status_code == 200
    assert (
        agent_api.post("/api/journeys/", {"name": "X"}, format="json").status_code
        == 403
    )
