"""
The queue (the follow-ups page): its filters, its order, bulk reassign, and the
customer's history on the follow-up page.
"""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from cxm.customers.services import interaction_record
from cxm.followups.models import EventKind, FollowUp, Priority, Team
from cxm.followups.selectors import CONTEXT_LIMIT
from cxm.followups.services import (
    followup_open_manual,
    followup_resolve,
    team_save,
)
from surveys.services import response_record
from tests.factories import (
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
    UserFactory,
    agent,
    manager,
    property_segment,
)

pytestmark = pytest.mark.django_db


def detractor(score=3, comment="rude staff", **invitation) -> FollowUp:
    return response_record(
        invitation=InvitationFactory(**invitation), score=score, comment=comment
    ).followup


def set_due(followup, hours, **fields):
    FollowUp.objects.filter(pk=followup.pk).update(
        due_at=timezone.now() + timedelta(hours=hours), **fields
    )


def ids(client, query="") -> list[int]:
    r = client.get("/followups/?" + query)
    assert r.status_code == 200, r.content
    return [f.pk for f in r.context["page"].object_list]


@pytest.fixture
def staff(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return user


# Filters


def test_it_shows_the_unresolved_by_default_and_everything_on_request(client, staff):
    open_one = detractor()
    resolved = detractor()
    followup_resolve(
        followup=resolved, actor=staff, resolution="Refund", root_cause="price"
    )

    assert ids(client) == [open_one.pk]
    assert ids(client, "status=unresolved") == [open_one.pk]
    assert set(ids(client, "status=any")) == {open_one.pk, resolved.pk}
    assert ids(client, "status=resolved") == [resolved.pk]
    html = client.get("/followups/").content.decode()
    assert '<option value="unresolved" selected>Unresolved</option>' in html


def test_it_filters_by_team_priority_and_root_cause(client, staff):
    team = team_save(team=Team(name="Seoul"), members=[agent()])
    in_team = followup_open_manual(
        customer=CustomerFactory(), actor=staff, team=team, priority=Priority.HIGH
    )
    no_team = detractor(score=5)
    resolved = detractor()
    followup_resolve(
        followup=resolved, actor=staff, resolution="Refund", root_cause="delivery"
    )

    assert ids(client, f"team={team.pk}") == [in_team.pk]
    assert ids(client, "team=none") == [no_team.pk]
    assert ids(client, "priority=high") == [in_team.pk]
    assert ids(client, "priority=normal") == [no_team.pk]
    assert ids(client, "status=any&root_cause=delivery") == [resolved.pk]
    assert ids(client, "status=any&root_cause=price") == []


def test_it_filters_by_survey_segment_and_customer(client, staff):
    survey = SurveyFactory()
    of_survey = detractor(campaign__survey=survey)
    enterprise = detractor(
        customer=CustomerFactory(properties={"plan": "enterprise"}, name="Kim Minji")
    )
    other = detractor(customer=CustomerFactory(email="park@example.com", name=""))
    segment = property_segment("plan", "enterprise")

    assert ids(client, f"survey={survey.pk}") == [of_survey.pk]
    assert ids(client, f"segment={segment.pk}") == [enterprise.pk]
    assert ids(client, "search=minji") == [enterprise.pk]
    assert ids(client, "search=PARK@example") == [other.pk]
    assert ids(client, "search=+") == ids(client)  # blank: no search
    # An id nothing has matches nothing, as an owner's or a team's does.
    assert ids(client, "survey=999999") == ids(client, "segment=999999") == []


@pytest.mark.parametrize(
    "query, field",
    [
        ("status=lost", "status"),
        ("overdue=maybe", "overdue"),
        ("priority=urgent", "priority"),
        ("team=seoul", "team"),
        ("owner=me", "owner"),
        ("root_cause=no%20such", "root_cause"),
        ("survey=first", "survey"),
        ("segment=abc", "segment"),
        ("search=" + "x" * 201, "search"),
    ],
)
def test_it_says_which_filter_is_wrong_and_lists_nothing(client, staff, query, field):
    detractor()

    r = client.get("/followups/?" + query)

    assert r.status_code == 400
    assert list(r.context["form"].errors) == [field]
    assert r.context["page"].object_list == []
    assert 'class="errorlist"' in r.content.decode()


def test_it_offers_owners_from_teams_and_groups_without_reading_follow_ups(
    client, django_assert_num_queries
):
    seoul_agent, busan_agent, outsider = agent(), agent(), UserFactory()
    boss = manager()
    team_save(team=Team(name="Seoul", manager=boss), members=[seoul_agent])
    team_save(team=Team(name="Busan"), members=[busan_agent])
    detractor()
    client.force_login(boss)

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        html = client.get("/followups/").content.decode()
    owner_select = html[
        html.index('name="owner"') : html.index("</select>", html.index('name="owner"'))
    ]

    # Agents work the follow-ups without a team, so every agent is offered.
    for user in [seoul_agent, busan_agent, boss]:
        assert f">{user.username}</option>" in owner_select
    assert f">{outsider.username}</option>" not in owner_select
    owner_queries = [
        q["sql"]
        for q in queries
        if '"auth_user"."username"' in q["sql"] and "DISTINCT" in q["sql"]
    ]
    assert owner_queries and all(
        "followups_followup" not in sql for sql in owner_queries
    )


# Order


def test_it_puts_overdue_then_high_priority_on_top_then_soonest_due(client, staff):
    later = detractor(score=5)
    sooner = detractor(score=5)
    high = detractor(score=5)
    late = detractor(score=5)
    first_contact_late = detractor(score=5)
    set_due(later, 30)
    set_due(sooner, 20)
    set_due(high, 40, priority=Priority.HIGH)
    set_due(late, -1)
    set_due(
        first_contact_late,
        50,
        first_contact_due_at=timezone.now() - timedelta(hours=2),
    )

    assert ids(client) == [
        first_contact_late.pk,  # its first contact was due two hours ago
        late.pk,
        high.pk,
        sooner.pk,
        later.pk,
    ]


def test_it_puts_an_agents_own_followups_first(client):
    me, colleague = agent(), agent()
    theirs = detractor()
    mine = detractor()
    set_due(theirs, -1, owner=colleague)  # overdue, but not mine
    set_due(mine, 30, owner=me)

    client.force_login(me)
    assert ids(client) == [mine.pk, theirs.pk]
    client.force_login(manager())
    assert ids(client) == [theirs.pk, mine.pk]


def test_it_lists_in_the_same_number_of_queries_whatever_the_filters_find(
    client, staff, django_assert_num_queries
):
    detractor()
    with django_assert_num_queries(11) as few:
        client.get("/followups/?status=any&overdue=false&search=example")
    for _ in range(4):
        detractor(customer=CustomerFactory(properties={"plan": "pro"}))
    with django_assert_num_queries(len(few.captured_queries)):
        client.get("/followups/?status=any&overdue=false&search=example")


# Bulk reassign


@pytest.fixture
def team():
    boss = manager()
    a, b = agent(), agent()
    return team_save(team=Team(name="Seoul", manager=boss), members=[a, b])


def team_followup(team, owner=None) -> FollowUp:
    return followup_open_manual(
        customer=CustomerFactory(), actor=team.manager, team=team, owner=owner
    )


def messages_of(r) -> list[str]:
    return [str(m) for m in get_messages(r.wsgi_request)]


def test_it_reassigns_the_chosen_followups_each_through_the_service(
    client, team, mailoutbox
):
    a, b = team.members.order_by("pk")
    first, second = team_followup(team, owner=a), team_followup(team, owner=a)
    client.force_login(team.manager)

    r = client.post(
        "/followups/assign/",
        {"followup": [first.pk, second.pk], "owner": b.pk, "next": "?priority=high"},
    )

    assert r.status_code == 302 and r["Location"] == "/followups/?priority=high"
    assert messages_of(r) == [f"2 follow-ups given to {b.username}."]
    for followup in (first, second):
        followup.refresh_from_db()
        assert followup.owner == b
        event = followup.events.filter(kind=EventKind.ASSIGNED).last()
        assert event.actor == team.manager
        assert event.data == {"previous": a.username, "owner": b.username}
    # The previous owner is told, once per follow-up, by the service's notice.
    assert {n.recipient for n in first.notices.all()} == {a}


def test_it_names_the_rows_it_refused_and_does_the_others(client, team):
    a, b = team.members.order_by("pk")
    mine = team_followup(team, owner=a)
    other_team = team_save(team=Team(name="Busan"), members=[agent()])
    elsewhere = team_followup(other_team)  # b is not in Busan
    resolved = team_followup(team, owner=a)
    followup_resolve(
        followup=resolved, actor=a, resolution="Refund", root_cause="price"
    )
    client.force_login(UserFactory(is_staff=True))

    r = client.post(
        "/followups/assign/",
        {"followup": [mine.pk, elsewhere.pk, resolved.pk, 999999], "owner": b.pk},
    )

    assert messages_of(r) == [
        f"1 follow-up given to {b.username}.",
        f"#{elsewhere.pk}: This user is not in the follow-up's team.",
        f"#{resolved.pk}: This follow-up is resolved.",
        "#999999: no such follow-up.",
    ]
    owners = dict(FollowUp.objects.values_list("pk", "owner"))
    assert owners[mine.pk] == b.pk
    assert owners[elsewhere.pk] != b.pk and owners[resolved.pk] == a.pk


@pytest.mark.parametrize(
    "data, message",
    [
        ({"owner": "OWNER"}, "Choose the follow-ups to reassign."),
        ({"followup": ["FOLLOWUP"]}, "Choose who gets the follow-ups."),
        (
            {"followup": ["FOLLOWUP"], "owner": "999999"},
            "Choose who gets the follow-ups from the list.",
        ),
        ({"followup": ["1x"], "owner": "OWNER"}, "1x is not a follow-up number."),
        (
            {"followup": ["9" * 30], "owner": "OWNER"},
            "99999999999999999999 is not a follow-up number.",
        ),
    ],
)
def test_it_says_what_is_missing_and_changes_nothing(client, team, data, message):
    a, b = team.members.order_by("pk")
    followup = team_followup(team, owner=a)
    client.force_login(team.manager)
    post = {
        key: [str(followup.pk) if v == "FOLLOWUP" else v for v in value]
        if isinstance(value, list)
        else str(b.pk)
        if value == "OWNER"
        else value
        for key, value in data.items()
    }

    r = client.post("/followups/assign/", post)

    assert r.status_code == 302 and r["Location"] == "/followups/"
    assert messages_of(r) == [message]
    followup.refresh_from_db()
    assert followup.owner == a


def test_it_refuses_a_get_on_bulk_reassign(client, team):
    client.force_login(team.manager)
    assert client.get("/followups/assign/").status_code == 405


# The customer's history on the follow-up page


def test_it_shows_the_customers_earlier_answers_with_their_history(client, staff):
    customer = CustomerFactory()
    earlier = InvitationFactory(customer=customer)
    response_record(invitation=earlier, score=3, comment="Slow courier")
    response_record(invitation=earlier, score=8, comment="Better after the call")
    followup = detractor(score=1, comment="Broken again", customer=customer)

    html = client.get(f"/followups/{followup.pk}/").content.decode()
    answers = html[
        html.index('id="earlier-answers"') : html.index('id="other-followups"')
    ]

    assert "Broken again" in answers and "Better after the call" in answers
    assert "<strong>8</strong>" in answers and "<strong>1</strong>" in answers
    # The changed answer keeps what it said before.
    assert "Answered 3 at" in answers and "Slow courier" in answers
    assert answers.index("Broken again") < answers.index("Better after the call")


def test_it_shows_the_customers_other_followups_and_interactions(client, staff):
    customer = CustomerFactory()
    other = followup_open_manual(customer=customer, actor=staff)
    followup = detractor(customer=customer)
    interaction_record(customer=customer, kind="support_call", channel="phone")

    html = client.get(f"/followups/{followup.pk}/").content.decode()
    others = html[html.index('id="other-followups"') : html.index('id="interactions"')]
    assert f'href="/followups/{other.pk}/"' in others
    assert f'href="/followups/{followup.pk}/"' not in others
    interactions = html[html.index('id="interactions"') :]
    assert "support_call" in interactions and "Phone" in interactions


def test_it_shows_the_latest_of_each_history_in_fixed_queries(
    client, staff, django_assert_num_queries
):
    customer = CustomerFactory()
    followup = detractor(customer=customer)
    with django_assert_num_queries(11) as few:
        client.get(f"/followups/{followup.pk}/")

    for n in range(CONTEXT_LIMIT + 2):
        invitation = InvitationFactory(customer=customer)
        response_record(invitation=invitation, score=2, comment=f"Answer {n}")
        response_record(invitation=invitation, score=4, comment=f"Changed {n}")
        interaction_record(customer=customer, kind="purchase")
    assert FollowUp.objects.filter(customer=customer).count() == CONTEXT_LIMIT + 3

    with django_assert_num_queries(len(few.captured_queries)):
        r = client.get(f"/followups/{followup.pk}/")
    history = r.context["history"]
    assert len(history["answers"]) == CONTEXT_LIMIT
    assert len(history["other_followups"]) == CONTEXT_LIMIT
    assert len(history["interactions"]) == CONTEXT_LIMIT
    assert "The latest 10 answers." in r.content.decode()
