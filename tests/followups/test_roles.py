"""
Who sees and works which follow-up, on every page and endpoint: an agent (their
team's), the manager of another team, the team's manager, a staff admin (all) and
an outsider (nothing). One helper decides: selectors.followups_visible_to.
"""

import pytest
from django.contrib.messages import get_messages
from rest_framework.test import APIClient

from cxm.followups.models import EventKind, FollowUp, FollowUpStatus, Team
from cxm.followups.services import followup_open_manual, team_save
from tests.factories import CustomerFactory, UserFactory, agent, manager

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    seoul_agent, busan_agent = agent(), agent()
    seoul_manager, busan_manager = manager(), manager()
    seoul = team_save(
        team=Team(name="Seoul", manager=seoul_manager), members=[seoul_agent]
    )
    busan = team_save(
        team=Team(name="Busan", manager=busan_manager), members=[busan_agent]
    )
    staff = UserFactory(is_staff=True, is_superuser=True)
    followup = followup_open_manual(
        customer=CustomerFactory(email="seoul@example.com"),
        actor=staff,
        team=seoul,
        owner=seoul_agent,
    )
    return {
        "agent": seoul_agent,
        "other_manager": busan_manager,
        "manager": seoul_manager,
        "staff": staff,
        "outsider": UserFactory(),
        "busan_agent": busan_agent,
        "seoul": seoul,
        "busan": busan,
        "followup": followup,
    }


def reads(pk):
    return [f"/followups/{pk}/", f"/api/followups/{pk}/"]


def writes(pk):
    """Each of the follow-up page's forms and the API's changes, as (url, data)."""
    return [
        (f"/followups/{pk}/take/", {}),
        (f"/followups/{pk}/note/", {"text": "Called."}),
        (f"/followups/{pk}/contact/", {"channel": "phone", "note": "Called."}),
        (f"/followups/{pk}/wait/", {}),
        (f"/followups/{pk}/resolve/", {"resolution": "Refund", "root_cause": "other"}),
        (f"/followups/{pk}/close/", {}),
        (f"/followups/{pk}/reopen/", {}),
    ]


def client_for(client, user):
    client.force_login(user)
    return client


def api_for(user):
    api = APIClient()
    api.force_login(user)
    return api


def listed(client, url="/followups/") -> bool:
    return "seoul@example.com" in client.get(url).content.decode()


def api_listed(api, pk) -> bool:
    return pk in [row["id"] for row in api.get("/api/followups/").json()["results"]]


def assert_untouched(followup, owner):
    followup.refresh_from_db()
    assert (followup.status, followup.owner) == (FollowUpStatus.NEW, owner)
    assert not followup.events.exclude(
        kind__in=[EventKind.OPENED, EventKind.ASSIGNED]
    ).exists()


@pytest.mark.parametrize("role", ["agent", "manager", "staff"])
def test_it_lets_the_team_its_manager_and_staff_see_and_work_it(client, people, role):
    user, followup = people[role], people["followup"]
    client = client_for(client, user)
    api = api_for(user)

    assert listed(client)
    assert api_listed(api, followup.pk)
    for url in reads(followup.pk):
        assert (client if url.startswith("/f") else api).get(url).status_code == 200
    r = client.post(f"/followups/{followup.pk}/note/", {"text": f"By the {role}."})
    assert r.status_code == 302
    r = api.patch(
        f"/api/followups/{followup.pk}/", {"note": f"API, {role}."}, format="json"
    )
    assert r.status_code == 200
    notes = followup.events.filter(kind=EventKind.NOTE).values_list("text", flat=True)
    assert set(notes) == {f"By the {role}.", f"API, {role}."}


@pytest.mark.parametrize("role", ["other_manager", "busan_agent"])
def test_it_hides_a_teams_followup_from_other_teams(client, people, role):
    user, followup = people[role], people["followup"]
    client = client_for(client, user)
    api = api_for(user)

    assert not listed(client)
    assert not listed(client, "/followups/?status=any&team=" + str(people["seoul"].pk))
    assert not api_listed(api, followup.pk)
    assert client.get(f"/followups/{followup.pk}/").status_code == 404
    assert api.get(f"/api/followups/{followup.pk}/").status_code == 404
    for url, data in writes(followup.pk):
        assert client.post(url, data).status_code == 404, url
    r = api.patch(f"/api/followups/{followup.pk}/", {"note": "x"}, format="json")
    assert r.status_code == 404
    r = client.post("/followups/assign/", {"followup": [followup.pk], "owner": user.pk})
    assert r.status_code == 302
    assert [str(m) for m in get_messages(r.wsgi_request)] == [
        f"#{followup.pk}: no such follow-up."
    ]
    assert_untouched(followup, people["agent"])


def test_it_shows_an_outsider_nothing(client, people):
    followup = people["followup"]
    client = client_for(client, people["outsider"])
    api = api_for(people["outsider"])

    assert client.get("/followups/").status_code == 403
    assert client.get(f"/followups/{followup.pk}/").status_code == 403
    assert api.get("/api/followups/").status_code == 403
    assert api.get(f"/api/followups/{followup.pk}/").status_code == 403
    for url, data in writes(followup.pk):
        assert client.post(url, data).status_code == 403, url
    assert client.post(
        "/followups/assign/", {"followup": [followup.pk], "owner": 1}
    ).status_code == (403)
    r = api.patch(f"/api/followups/{followup.pk}/", {"note": "x"}, format="json")
    assert r.status_code == 403
    r = client.get("/admin/followups/followup/")
    assert r.status_code == 302 and "/admin/login/" in r["Location"]
    assert_untouched(followup, people["agent"])


def test_it_keeps_agents_and_managers_out_of_the_admin(client, people):
    """The admin is for staff accounts; there the same helper decides."""
    for role in ["agent", "manager"]:
        client = client_for(client, people[role])
        r = client.get(f"/admin/followups/followup/{people['followup'].pk}/change/")
        assert r.status_code == 302 and "/admin/login/" in r["Location"]


def test_it_shows_staff_every_followup_in_the_admin(client, people):
    busan = followup_open_manual(
        customer=CustomerFactory(email="busan@example.com"),
        actor=people["staff"],
        team=people["busan"],
    )
    client = client_for(client, people["staff"])
    html = client.get("/admin/followups/followup/").content.decode()
    assert "seoul@example.com" in html and "busan@example.com" in html
    for followup in [people["followup"], busan]:
        r = client.get(f"/admin/followups/followup/{followup.pk}/change/")
        assert r.status_code == 200


def test_it_lets_only_a_manager_reassign_in_bulk(client, people):
    followup = people["followup"]
    other_agent = agent()
    team_save(team=people["seoul"], members=[people["agent"], other_agent])

    client = client_for(client, people["agent"])
    assert 'id="bulk-assign"' not in client.get("/followups/").content.decode()
    r = client.post(
        "/followups/assign/", {"followup": [followup.pk], "owner": other_agent.pk}
    )
    assert [str(m) for m in get_messages(r.wsgi_request)] == [
        f"#{followup.pk}: Only the team's manager can give a follow-up to someone else."
    ]
    followup.refresh_from_db()
    assert followup.owner == people["agent"]

    client = client_for(client, people["manager"])
    assert 'id="bulk-assign"' in client.get("/followups/").content.decode()
    r = client.post(
        "/followups/assign/", {"followup": [followup.pk], "owner": other_agent.pk}
    )
    assert [str(m) for m in get_messages(r.wsgi_request)] == [
        f"1 follow-up given to {other_agent.username}."
    ]
    followup.refresh_from_db()
    assert followup.owner == other_agent


def test_it_shows_only_the_other_followups_the_reader_may_see(client, people):
    """The follow-up page's history keeps to the reader's teams too."""
    customer = people["followup"].customer
    busan = followup_open_manual(
        customer=customer, actor=people["staff"], team=people["busan"]
    )
    for role, sees in [("agent", False), ("staff", True)]:
        client = client_for(client, people[role])
        html = client.get(f"/followups/{people['followup'].pk}/").content.decode()
        assert (f"/followups/{busan.pk}/" in html) is sees, role
    assert FollowUp.objects.filter(customer=customer).count() == 2
