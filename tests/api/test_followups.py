"""The follow-up queue over the API: filter it, assign, note and resolve."""

from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.followups.models import EventKind, FollowUp, FollowUpStatus
from cxm.followups.services import followup_resolve
from tests.api.helpers import answer, page_ids
from tests.factories import UserFactory, agent

pytestmark = pytest.mark.django_db


def detractor_followup(score=3, comment="rude staff") -> FollowUp:
    return answer(score, comment).followup


def make_overdue(followup):
    FollowUp.objects.filter(pk=followup.pk).update(
        due_at=timezone.now() - timedelta(hours=1)
    )


def event_kinds(followup) -> list[str]:
    return list(followup.events.order_by("pk").values_list("kind", flat=True))


def patch(api, followup, body):
    return api.patch(f"/api/followups/{followup.pk}/", body, format="json")


# Listing and filtering


def test_it_lists_the_queue_by_due_time(api):
    later = detractor_followup()
    sooner = detractor_followup()
    FollowUp.objects.filter(pk=sooner.pk).update(due_at=timezone.now())

    assert page_ids(api.get("/api/followups/")) == [sooner.pk, later.pk]


def test_it_filters_by_status(api, staff):
    open_one = detractor_followup()
    resolved = detractor_followup()
    followup_resolve(
        followup=resolved, actor=staff, resolution="Refund", root_cause="price"
    )

    assert page_ids(api.get("/api/followups/?status=new")) == [open_one.pk]
    assert page_ids(api.get("/api/followups/?status=resolved")) == [resolved.pk]


def test_it_filters_by_owner_and_by_nobody(api):
    owner = agent()
    mine = detractor_followup()  # round-robin gives it to the only agent
    assert mine.owner == owner
    nobodys = detractor_followup()
    FollowUp.objects.filter(pk=nobodys.pk).update(owner=None)

    assert page_ids(api.get(f"/api/followups/?owner={owner.pk}")) == [mine.pk]
    assert page_ids(api.get("/api/followups/?owner=none")) == [nobodys.pk]


def test_it_filters_by_overdue(api):
    late = detractor_followup()
    make_overdue(late)
    on_time = detractor_followup()

    assert page_ids(api.get("/api/followups/?overdue=true")) == [late.pk]
    assert page_ids(api.get("/api/followups/?overdue=false")) == [on_time.pk]


def test_it_lists_the_unresolved_unless_asked_for_any_status(api, staff):
    open_one = detractor_followup()
    resolved = detractor_followup()
    followup_resolve(
        followup=resolved, actor=staff, resolution="Refund", root_cause="price"
    )

    assert page_ids(api.get("/api/followups/")) == [open_one.pk]
    assert set(page_ids(api.get("/api/followups/?status=any"))) == {
        open_one.pk,
        resolved.pk,
    }
    # One follow-up is found by its id whatever its status.
    assert api.get(f"/api/followups/{resolved.pk}/").status_code == 200


def test_it_filters_like_the_queue_page(api, staff):
    """The page and the API share one FilterSet: same parameters, same rows."""
    from cxm.customers.services import segment_create
    from cxm.followups.models import Team
    from cxm.followups.services import followup_open_manual, team_save
    from tests.factories import CustomerFactory

    team = team_save(team=Team(name="Seoul"), members=[agent()])
    customer = CustomerFactory(name="Kim Minji", properties={"plan": "enterprise"})
    in_team = followup_open_manual(
        customer=customer, actor=staff, team=team, priority="high"
    )
    answered = detractor_followup(score=5)
    resolved = detractor_followup()
    followup_resolve(
        followup=resolved, actor=staff, resolution="Refund", root_cause="delivery"
    )
    segment = segment_create(
        name="Enterprise",
        conditions=[
            {"type": "property", "name": "plan", "op": "equals", "value": "enterprise"}
        ],
    )
    client = api.__class__()
    client.force_login(staff)

    for query, expected in [
        (f"team={team.pk}", [in_team.pk]),
        ("team=none", [answered.pk]),
        ("priority=high", [in_team.pk]),
        ("status=any&root_cause=delivery", [resolved.pk]),
        (f"survey={answered.response.survey_id}", [answered.pk]),
        (f"segment={segment.pk}", [in_team.pk]),
        ("search=minji", [in_team.pk]),
    ]:
        assert page_ids(api.get(f"/api/followups/?{query}")) == expected, query
        page = client.get(f"/followups/?{query}")
        assert [f.pk for f in page.context["page"].object_list] == expected, query


def test_it_orders_overdue_then_high_priority_then_soonest_due(api):
    later, high, late = (detractor_followup(score=5) for _ in range(3))
    FollowUp.objects.filter(pk=later.pk).update(
        due_at=timezone.now() + timedelta(hours=5)
    )
    FollowUp.objects.filter(pk=high.pk).update(
        due_at=timezone.now() + timedelta(hours=9), priority="high"
    )
    make_overdue(late)

    assert page_ids(api.get("/api/followups/")) == [late.pk, high.pk, later.pk]


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "priority=urgent",
        "team=seoul",
        "root_cause=no%20such",
        "survey=first",
        "segment=x",
        "overdue=maybe",
        "owner=me",
        "owner=1%00",
        # Past any database's integer (SQLite raises OverflowError on it).
        "owner=9999999999999999999",
    ],
)
def test_it_answers_400_to_a_bad_filter(api, query):
    detractor_followup()

    r = api.get(f"/api/followups/?{query}")

    assert r.status_code == 400
    assert list(r.json()) == [query.split("=")[0]]


def test_it_retrieves_a_followup_with_its_timeline(api):
    followup = detractor_followup(score=2, comment="Late again")

    body = api.get(f"/api/followups/{followup.pk}/").json()

    assert body["score"] == 2
    assert body["comment"] == "Late again"
    assert body["customer"]["email"] == followup.customer.email
    assert body["priority"] == "high"
    assert [e["kind"] for e in body["events"]] == event_kinds(followup)
    assert body["events"][0]["kind"] == EventKind.OPENED


def test_it_lists_followups_in_a_constant_number_of_queries(
    api, django_assert_num_queries
):
    agent()
    for _ in range(2):
        detractor_followup()
    # token, count, the page's ids in the queue's order, those follow-ups with
    # owner/customer/campaign, their events
    with django_assert_num_queries(5) as few:
        assert len(page_ids(api.get("/api/followups/"))) == 2

    for _ in range(8):
        detractor_followup()
    with django_assert_num_queries(len(few.captured_queries)):
        rows = api.get("/api/followups/").json()["results"]
    assert len(rows) == 10
    assert all(row["owner_username"] and row["events"] for row in rows)


# Changing


def test_it_assigns_a_followup(api, staff):
    followup = detractor_followup()
    owner = agent()

    r = patch(api, followup, {"owner": owner.pk})

    assert r.status_code == 200, r.content
    assert r.json()["owner"] == owner.pk
    followup.refresh_from_db()
    assert followup.owner == owner
    assigned = followup.events.filter(kind=EventKind.ASSIGNED).last()
    assert assigned.actor == staff
    assert r.json()["events"][-1]["kind"] == EventKind.ASSIGNED


def test_it_unassigns_a_followup_with_null(api):
    agent()
    followup = detractor_followup()
    assert followup.owner is not None

    r = patch(api, followup, {"owner": None})

    assert r.status_code == 200, r.content
    followup.refresh_from_db()
    assert followup.owner is None


def test_it_adds_a_note(api, staff):
    followup = detractor_followup()

    r = patch(api, followup, {"note": "  Called, left a message.  "})

    assert r.status_code == 200, r.content
    note = followup.events.get(kind=EventKind.NOTE)
    assert (note.text, note.actor) == ("Called, left a message.", staff)
    assert r.json()["events"][-1]["text"] == "Called, left a message."


def test_it_resolves_a_followup(api, staff):
    followup = detractor_followup()

    r = patch(
        api,
        followup,
        {"status": "resolved", "resolution": "Refunded", "root_cause": "price"},
    )

    assert r.status_code == 200, r.content
    assert r.json()["status"] == "resolved"
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.RESOLVED
    assert (followup.resolution, followup.root_cause.code) == ("Refunded", "price")
    assert followup.resolved_by == staff


def test_it_assigns_notes_and_resolves_in_one_request(api, staff):
    followup = detractor_followup()

    r = patch(
        api,
        followup,
        {
            "owner": staff.pk,
            "note": "Spoke to her.",
            "status": "resolved",
            "resolution": "Apologised and refunded",
            "root_cause": "service",
        },
    )

    assert r.status_code == 200, r.content
    followup.refresh_from_db()
    assert (followup.owner, followup.status) == (staff, FollowUpStatus.RESOLVED)
    kinds = event_kinds(followup)
    assert kinds[-3:] == [EventKind.ASSIGNED, EventKind.NOTE, EventKind.RESOLVED]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"status": "resolved", "root_cause": "price"}, "resolution"),
        ({"status": "resolved", "resolution": "Refunded"}, "root_cause"),
        ({"status": "resolved", "resolution": "  ", "root_cause": ""}, "resolution"),
    ],
    ids=["no-resolution", "no-root-cause", "blank"],
)
def test_it_refuses_to_resolve_without_resolution_or_root_cause(api, body, field):
    followup = detractor_followup()

    r = patch(api, followup, body)

    assert r.status_code == 400
    assert field in r.json()
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW


def test_it_changes_nothing_when_one_part_of_a_request_fails(api, staff):
    followup = detractor_followup()
    owner_before = followup.owner_id
    events_before = event_kinds(followup)

    r = patch(
        api,
        followup,
        {"owner": staff.pk, "note": "Trying.", "status": "resolved"},
    )

    assert r.status_code == 400
    assert set(r.json()) == {"resolution", "root_cause"}
    followup.refresh_from_db()
    assert followup.owner_id == owner_before
    assert event_kinds(followup) == events_before


@pytest.mark.parametrize(
    "body, field",
    [
        (
            {"root_cause": "aliens", "status": "resolved", "resolution": "x"},
            "root_cause",
        ),
        ({"status": "reopened"}, "status"),
        ({"resolution": "Refunded"}, "status"),
        ({"owner": "someone"}, "owner"),
        ({"owner": "1"}, "owner"),
        ({"status": "resolved", "resolution": "x"}, "root_cause"),
        ({"status": "resolved", "root_cause": "other"}, "resolution"),
        (
            {"status": "resolved", "resolution": " ", "root_cause": "other"},
            "resolution",
        ),
        ({"note": "  "}, "note"),
        ({"note": 5}, "note"),
        ({"status": "resolved", "resolution": "x", "root_cause": ""}, "root_cause"),
        ({"note": ""}, "note"),
        ({"note": ["a", "b"]}, "note"),
        ({}, "non_field_errors"),
    ],
)
def test_it_answers_400_naming_the_field_to_bad_changes(api, body, field):
    followup = detractor_followup()

    r = patch(api, followup, body)

    assert r.status_code == 400, r.content
    assert list(r.json()) == [field]


@pytest.mark.parametrize(
    "owner",
    [
        lambda: UserFactory().pk,  # outside CX
        lambda: agent(is_active=False).pk,
        lambda: 99999999,
        lambda: 10**30,
    ],
    ids=["outsider", "inactive", "unknown", "huge"],
)
def test_it_answers_404_to_an_owner_who_is_no_active_cx_staff(api, owner):
    followup = detractor_followup()
    owner = owner()

    r = patch(api, followup, {"owner": owner})

    assert r.status_code == 404
    assert r.json() == {"detail": f"There is no active CX staff user {owner}."}


def test_it_answers_409_with_the_services_message_on_a_second_resolve(api, staff):
    followup = detractor_followup()
    followup_resolve(
        followup=followup, actor=staff, resolution="Done", root_cause="other"
    )

    r = patch(
        api,
        followup,
        {"status": "resolved", "resolution": "Again", "root_cause": "other"},
    )

    assert r.status_code == 409
    assert r.json() == {"detail": "This follow-up is already resolved."}


def test_it_answers_404_for_an_unknown_followup(api):
    assert api.get("/api/followups/999999/").status_code == 404
    assert (
        api.patch("/api/followups/999999/", {"note": "x"}, format="json").status_code
        == 404
    )


@pytest.mark.parametrize("shape", [lambda pk: pk + 0.7, lambda pk: f"{pk}.7", bool])
def test_it_refuses_an_owner_id_that_is_not_a_whole_number(api, shape):
    """2.7 is not user 2: the database would round it down."""
    followup = detractor_followup()
    other = agent()
    owner_before = followup.owner_id

    r = patch(api, followup, {"owner": shape(other.pk)})

    assert r.status_code == 400, r.content
    assert list(r.json()) == ["owner"]
    followup.refresh_from_db()
    assert followup.owner_id == owner_before


# The workflow and opening by hand


def test_it_logs_a_contact_and_then_refuses_an_illegal_move_with_409(api, staff):
    followup = detractor_followup()

    contacted = patch(
        api, followup, {"status": "contacted", "channel": "phone", "note": "Spoke"}
    )
    closing = patch(api, followup, {"status": "closed"})

    assert contacted.status_code == 200, contacted.content
    assert contacted.json()["status"] == "contacted"
    assert contacted.json()["first_contact_at"] is not None
    assert closing.status_code == 409
    assert "cannot become closed" in str(closing.json())
    assert FollowUp.objects.get(pk=followup.pk).status == FollowUpStatus.CONTACTED


def test_it_reopens_a_resolved_followup(api, staff):
    followup = detractor_followup()
    followup_resolve(followup=followup, actor=staff, resolution="x", root_cause="price")

    r = patch(api, followup, {"reopen": True, "note": "She wrote again"})

    assert r.status_code == 200, r.content
    assert r.json()["status"] == "new" and r.json()["root_cause"] is None
    assert r.json()["events"][-1]["kind"] == EventKind.REOPENED


def test_it_opens_a_followup_by_hand_for_a_customer(api, staff):
    from tests.factories import CustomerFactory

    customer = CustomerFactory()

    r = api.post(
        "/api/followups/",
        {"customer": customer.pk, "priority": "high", "note": "Called us angry"},
        format="json",
    )

    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["customer"]["id"], body["priority"], body["score"]) == (
        customer.pk,
        "high",
        None,
    )
    assert FollowUp.objects.get(pk=body["id"]).opened_by == staff


def test_it_lists_the_root_causes_in_the_readers_language(api):
    r = api.get("/api/root-causes/", HTTP_ACCEPT_LANGUAGE="ko")

    assert r.status_code == 200
    price = next(c for c in r.json() if c["code"] == "price")
    assert price["name"] == "가격 또는 결제"
