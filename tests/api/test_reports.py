"""GET /api/reports/followups/: the reports page's figures, for managers and staff."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.factories import agent
from tests.followups.test_reports import example  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

URL = "/api/reports/followups/"


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_it_gives_staff_everyones_figures(api, example):  # noqa: F811
    r = api.get(URL)

    assert r.status_code == 200, r.content
    data = r.json()
    totals = data["totals"]
    assert (totals["followups"], totals["open"], totals["overdue"]) == (6, 3, 2)
    assert (totals["first_contact_met"], totals["first_contact_measured"]) == (3, 5)
    assert totals["first_contact_share"] == 60.0
    assert totals["resolution_share"] == 40.0
    assert totals["median_first_contact_seconds"] == 9000.0
    assert totals["median_resolution_seconds"] == 72000.0
    assert (totals["recovered"], totals["checkins_answered"]) == (2, 3)
    assert totals["recovery_rate"] == 66.7
    assert [row["name"] for row in data["by_team"]] == ["Busan", "Seoul"]
    assert data["by_team"][0]["id"] == example["busan"].pk
    assert {row["name"]: row["followups"] for row in data["by_owner"]} == {
        "ahn": 3,
        "baek": 2,
        "sora": 1,
    }
    assert [row["name"] for row in data["by_root_cause"]][-1] == "Not resolved"
    assert sum(row["followups"] for row in data["by_week"]) == 6
    assert all(row["week"][4:6] == "-W" for row in data["by_week"])


def test_it_gives_a_manager_their_teams_figures_in_their_language(example):  # noqa: F811
    r = client_of(example["bora"]).get(URL, HTTP_ACCEPT_LANGUAGE="ko")

    assert r.status_code == 200
    data = r.json()
    assert data["totals"]["followups"] == 2
    assert [row["name"] for row in data["by_team"]] == ["Busan"]
    assert [row["name"] for row in data["by_root_cause"]][0] == "제품 또는 품질"


def test_it_filters_by_period_and_team(api, example):  # noqa: F811
    today = example["now"].date().isoformat()
    assert api.get(URL, {"since": today}).json()["totals"]["followups"] == 1
    # The first and the last dates there are: everything.
    r = api.get(URL, {"since": "0001-01-01", "until": "9999-12-31"})
    assert r.json()["totals"]["followups"] == 6
    r = api.get(URL, {"team": example["seoul"].pk, "until": today})
    assert r.json()["totals"]["followups"] == 4


def test_it_refuses_agents_outsiders_and_anonymous_visitors(
    example,  # noqa: F811
    outsider_api,
    anonymous_api,
):
    assert client_of(agent()).get(URL).status_code == 403
    assert outsider_api.get(URL).status_code == 403
    assert anonymous_api.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "2026-05-02", "until": "2026-05-01"}, "non_field_errors"),
        ({"since": "soon"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"team": "abc"}, "team"),
        ({"team": "1.5"}, "team"),
    ],
)
def test_it_answers_400_with_the_field_to_a_bad_filter(api, params, field):
    r = api.get(URL, params)

    assert r.status_code == 400, r.content
    assert field in r.json()


def test_it_answers_404_to_a_team_that_is_not_the_managers(example):  # noqa: F811
    manager = client_of(example["sora"])
    for team in [example["busan"].pk, 0, -1, 99999999999999999999999]:
        r = manager.get(URL, {"team": team})

        assert r.status_code == 404, team
        assert r.json() == {"detail": "None of your teams has this id."}


def test_it_is_documented_in_the_schema():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    operation = schema["paths"][URL]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"since", "until", "team"}
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    totals = schema["components"]["schemas"]["ReportFigures"]["properties"]
    assert "first_contact_share" in totals and "recovery_rate" in totals
