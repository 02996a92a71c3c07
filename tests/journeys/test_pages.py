"""The journey list and map pages: who sees them, what they show, their queries."""

import pytest
from django.core.cache import cache

from journeys.services import journey_create
from tests.factories import CustomerFactory, UserFactory, agent
from tests.journeys.test_map import (
    answer,
    example,  # noqa: F401 (a fixture)
    interact,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent_client(client):
    client.force_login(agent())
    return client


def map_url(example, **params):  # noqa: F811
    return f"/journeys/{example['journey'].pk}/"


def test_it_shows_the_map_with_its_figures(agent_client, example):  # noqa: F811
    r = agent_client.get(
        map_url(example),
        {"since": example["since"].isoformat(), "until": example["until"].isoformat()},
    )

    assert r.status_code == 200
    page = r.content.decode()
    assert f'id="touchpoint-{example["checkout"].pk}"' in page
    assert "−33.3" in page  # the checkout's change
    assert "33.3 %" in page  # of those who purchased, went on to use
    assert "2 open follow-ups" in page
    assert 'id="curve-table"' in page


def test_it_runs_a_fixed_number_of_queries(
    agent_client,
    example,  # noqa: F811
    django_assert_num_queries,
):
    # Session and user (2), the agent's groups (1), the journey (1), the map (5),
    # the header's reports link (1), the segment filter's choices (1); and the
    # themes of the two touchpoints with answers (2) until they are cached.
    with django_assert_num_queries(13):
        assert agent_client.get(map_url(example)).status_code == 200
    with django_assert_num_queries(11):
        assert agent_client.get(map_url(example)).status_code == 200
    answer(example["nps"], 3, days_ago=1)
    interact(CustomerFactory(), "ad_view", days_ago=1)
    cache.clear()
    with django_assert_num_queries(13):
        assert agent_client.get(map_url(example)).status_code == 200
    journey_create(name="Another")
    with django_assert_num_queries(5):
        assert agent_client.get("/journeys/").status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"since": "2025-02-02", "until": "2025-02-01"},
        {"segment": "7"},
    ],
)
def test_it_refuses_bad_filters_with_a_message(agent_client, example, params):  # noqa: F811
    r = agent_client.get(map_url(example), params)

    assert r.status_code == 400
    assert b"errorlist" in r.content


def test_it_shows_the_map_only_to_cx_staff(client, example):  # noqa: F811
    assert client.get(map_url(example)).status_code == 302
    client.force_login(UserFactory())
    assert client.get(map_url(example)).status_code == 403
    assert client.get("/journeys/").status_code == 403
