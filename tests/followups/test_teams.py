"""Teams: round robin among available members, account owners, reassignment, roles."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from cxm.followups.models import FollowUp, FollowUpNotice, FollowUpRule, Team
from cxm.followups.models import TeamMember as Member
from cxm.followups.services import followup_assign, followups_sweep, team_save
from surveys.services import response_record
from tests.factories import CustomerFactory, InvitationFactory, UserFactory, agent
from tests.factories import manager as cx_manager

pytestmark = pytest.mark.django_db


def make_team(name, members, manager=None) -> Team:
    return team_save(team=Team(name=name, manager=manager), members=members)


def route_nps_to(team, **fields):
    FollowUpRule.objects.filter(survey_kind="nps").update(team=team, **fields)


def detractor(customer=None) -> FollowUp:
    invitation = InvitationFactory(customer=customer or CustomerFactory())
    return response_record(invitation=invitation, score=2).followup


def test_it_deals_a_teams_followups_in_turn_to_its_available_members():
    a, b, away, outsider = agent(), agent(), agent(), agent()
    team = make_team("Seoul", [a, b, away])
    Member.objects.filter(user=away).update(available=False)
    route_nps_to(team)

    owners = [detractor().owner for _ in range(4)]

    assert owners == [a, b, a, b]
    assert outsider not in owners


def test_it_gives_the_followup_to_the_customers_account_owner(settings):
    a, b = agent(), agent(username="minji")
    team = make_team("Enterprise", [a, b])
    route_nps_to(team, assignment="account_owner")

    known = detractor(CustomerFactory(properties={"account_owner": "MINJI"}))
    by_email = detractor(CustomerFactory(properties={"account_owner": b.email}))
    unknown = detractor(CustomerFactory(properties={"account_owner": "nobody"}))

    assert (known.owner, by_email.owner) == (b, b)
    assert unknown.owner == a  # round robin: b had the last turns


def test_it_notifies_the_previous_owner_once_however_often_the_sweep_runs(
    mailoutbox,
):
    first, second = agent(), agent()
    boss = cx_manager()
    team = make_team("Seoul", [first, second], manager=boss)
    route_nps_to(team)
    followup = detractor()
    assert followup.owner == first

    followup_assign(followup=followup, owner=second, actor=boss)  # no commit hooks
    notice = FollowUpNotice.objects.get()
    later = timezone.now() + timedelta(minutes=5)
    results = [followups_sweep(now=later) for _ in range(2)]

    assert [r["notices"] for r in results] == [1, 0]
    away = [m for m in mailoutbox if m.to == [first.email]]
    assert len(away) == 1 and second.username in away[0].body
    notice.refresh_from_db()
    assert notice.sent_at is not None
    assigned = followup.events.filter(kind="assigned").last()
    assert assigned.description() == f"From {first.username} to {second.username}"
    assert assigned.actor == boss


def test_it_lets_an_agent_take_but_not_give_away():
    first, second = agent(), agent()
    team = make_team("Seoul", [first, second])
    route_nps_to(team)
    followup = detractor()

    with pytest.raises(PermissionDenied):
        followup_assign(followup=followup, owner=second, actor=first)
    followup_assign(followup=followup, owner=second, actor=second)

    assert FollowUp.objects.get(pk=followup.pk).owner == second


def test_it_refuses_an_owner_outside_the_team():
    boss = cx_manager()
    team = make_team("Seoul", [agent()], manager=boss)
    route_nps_to(team)
    followup = detractor()

    with pytest.raises(ValidationError) as e:
        followup_assign(followup=followup, owner=agent(), actor=boss)

    assert "owner" in e.value.message_dict


# Roles, on the pages, the API and the admin


@pytest.fixture
def two_teams():
    seoul_agent, busan_agent, seoul_boss = agent(), agent(), cx_manager()
    seoul = make_team("Seoul", [seoul_agent], manager=seoul_boss)
    busan = make_team("Busan", [busan_agent])
    route_nps_to(seoul)
    in_seoul = detractor()
    route_nps_to(busan)
    in_busan = detractor()
    route_nps_to(None)
    legacy = detractor()
    return {
        "seoul_agent": seoul_agent,
        "busan_agent": busan_agent,
        "seoul_boss": seoul_boss,
        "staff": UserFactory(is_staff=True, is_superuser=True),
        "outsider": UserFactory(),
        "seoul": in_seoul,
        "busan": in_busan,
        "legacy": legacy,
    }


def api_as(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user)}")
    return client


SEES = {
    "seoul_agent": {"seoul", "legacy"},
    "seoul_boss": {"seoul", "legacy"},
    "busan_agent": {"busan", "legacy"},
    "staff": {"seoul", "busan", "legacy"},
    "outsider": set(),
}


@pytest.mark.parametrize("who", list(SEES))
def test_it_shows_each_role_its_teams_followups_on_the_pages(client, two_teams, who):
    client.force_login(two_teams[who])
    listed = client.get("/followups/")
    for name in ("seoul", "busan", "legacy"):
        followup = two_teams[name]
        page = client.get(f"/followups/{followup.pk}/")
        visible = name in SEES[who]
        assert page.status_code == (
            200 if visible else 403 if who == "outsider" else 404
        )
        if who != "outsider":
            assert (
                f'href="/followups/{followup.pk}/"' in listed.content.decode()
            ) == visible


@pytest.mark.parametrize("who", list(SEES))
def test_it_shows_each_role_its_teams_followups_on_the_api(two_teams, who):
    api = api_as(two_teams[who])
    listed = api.get("/api/followups/")
    if who == "outsider":
        assert listed.status_code == 403
        return
    ids = {row["id"] for row in listed.json()["results"]}
    assert ids == {two_teams[name].pk for name in SEES[who]}
    for name in ("seoul", "busan", "legacy"):
        r = api.get(f"/api/followups/{two_teams[name].pk}/")
        assert r.status_code == (200 if name in SEES[who] else 404)


def test_it_lets_only_the_teams_manager_reassign_on_the_api(two_teams):
    followup = two_teams["seoul"]
    other = agent()
    Member.objects.create(team=followup.team, user=other)

    by_agent = api_as(two_teams["seoul_agent"]).patch(
        f"/api/followups/{followup.pk}/", {"owner": other.pk}, format="json"
    )
    by_boss = api_as(two_teams["seoul_boss"]).patch(
        f"/api/followups/{followup.pk}/", {"owner": other.pk}, format="json"
    )

    assert by_agent.status_code == 403
    assert by_boss.status_code == 200, by_boss.content
    assert FollowUp.objects.get(pk=followup.pk).owner == other


def test_it_shows_staff_every_followup_in_the_admin(client, two_teams):
    client.force_login(two_teams["staff"])
    everything = client.get("/admin/followups/followup/").content.decode()
    assert all(
        f"/admin/followups/followup/{two_teams[n].pk}/change/" in everything
        for n in ("seoul", "busan", "legacy")
    )
