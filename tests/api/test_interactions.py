"""Interactions over the API: a customer named three ways, retries recorded once."""

import threading

import pytest
from django.db import connection

from cxm.customers.models import Interaction
from tests.api.helpers import page_ids
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def post(api, **data):
    return api.post("/api/interactions/", data, format="json")


def test_it_records_an_interaction_of_a_customer_named_by_id(api):
    jane = CustomerFactory()

    r = post(
        api,
        customer=jane.pk,
        kind="purchase",
        channel="store",
        occurred_at="2026-11-20T10:00:00Z",
        properties={"order_total": 42.5},
    )

    assert r.status_code == 201, r.content
    interaction = Interaction.objects.get()
    assert r.json()["id"] == interaction.pk
    assert r.json()["customer"] == jane.pk
    assert (interaction.customer, interaction.kind, interaction.channel) == (
        jane,
        "purchase",
        "store",
    )
    assert interaction.occurred_at.isoformat() == "2026-11-20T10:00:00+00:00"
    assert interaction.properties == {"order_total": 42.5}


def test_it_finds_the_customer_by_email_in_any_case_or_by_external_id(api):
    jane = CustomerFactory(email="jane@example.com", external_id="crm-7")

    by_email = post(api, customer_email="JANE@example.com", kind="app_visit")
    by_id = post(api, customer_external_id="crm-7", kind="support_call")

    assert (by_email.status_code, by_id.status_code) == (201, 201)
    assert {i.customer for i in Interaction.objects.all()} == {jane}
    assert by_email.json()["channel"] == "other"


@pytest.mark.parametrize(
    "given, field, message",
    [
        ({"customer": 999999}, "customer", "There is no customer 999999."),
        (
            {"customer_email": "nobody@example.com"},
            "customer_email",
            "There is no customer with the email nobody@example.com.",
        ),
        (
            {"customer_external_id": "crm-404"},
            "customer_external_id",
            "There is no customer with the external id 'crm-404'.",
        ),
    ],
)
def test_it_names_an_unknown_customer_in_a_400(api, given, field, message):
    CustomerFactory(email="jane@example.com", external_id="crm-7")

    r = post(api, kind="purchase", **given)

    assert r.status_code == 400, r.content
    assert r.json() == {field: [message]}
    assert not Interaction.objects.exists()


def test_it_wants_the_customer_named_exactly_once(api):
    jane = CustomerFactory(email="jane@example.com")

    neither = post(api, kind="purchase")
    both = post(api, kind="purchase", customer=jane.pk, customer_email=jane.email)

    for r in (neither, both):
        assert r.status_code == 400
        assert "Name the customer once" in r.json()["customer"][0]
    assert not Interaction.objects.exists()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"kind": "Purchase Made"}, "kind"),
        ({"kind": ""}, "kind"),
        ({"kind": "purchase", "channel": "pigeon"}, "channel"),
        ({"kind": "purchase", "occurred_at": "yesterday"}, "occurred_at"),
        ({"kind": "purchase", "properties": [1, 2]}, "properties"),
    ],
)
def test_it_refuses_a_malformed_interaction(api, data, field):
    jane = CustomerFactory()

    r = post(api, customer=jane.pk, **data)

    assert r.status_code == 400, r.content
    assert field in r.json()
    assert not Interaction.objects.exists()


def test_it_records_a_retried_call_once(api):
    jane = CustomerFactory()
    call = {"customer": jane.pk, "kind": "purchase", "external_id": "order-1001"}

    first = post(api, **call)
    retry = post(api, **call)

    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json() == retry.json()
    assert Interaction.objects.count() == 1


def test_it_refuses_an_external_id_used_for_another_customer(api):
    jane, john = CustomerFactory(), CustomerFactory()
    post(api, customer=jane.pk, kind="purchase", external_id="order-1001")

    r = post(api, customer=john.pk, kind="purchase", external_id="order-1001")

    assert r.status_code == 409, r.content
    assert "order-1001" in r.json()["external_id"][0]
    assert list(Interaction.objects.values_list("customer", flat=True)) == [jane.pk]


@pytest.mark.django_db(transaction=True)
def test_it_records_two_racing_retries_once(api):
    jane = CustomerFactory()
    call = {"customer": jane.pk, "kind": "purchase", "external_id": "order-7"}
    statuses = []
    start = threading.Barrier(4)

    def retry():
        try:
            start.wait()
            statuses.append(post(api, **call).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(statuses) == [200, 200, 200, 201]
    assert Interaction.objects.count() == 1


def test_it_lists_a_customers_interactions_newest_first(api, django_assert_num_queries):
    jane, john = CustomerFactory(), CustomerFactory()
    old = Interaction.objects.create(
        customer=jane, kind="purchase", occurred_at="2026-01-01T00:00:00Z"
    )
    new = Interaction.objects.create(
        customer=jane, kind="support_call", occurred_at="2026-02-01T00:00:00Z"
    )
    Interaction.objects.create(customer=john, kind="purchase")

    with django_assert_num_queries(4):  # auth token, user, count, page
        r = api.get(f"/api/interactions/?customer={jane.pk}")
    assert page_ids(r) == [new.pk, old.pk]
    assert page_ids(
        api.get("/api/interactions/?kind=purchase&customer=" + str(jane.pk))
    ) == [old.pk]
    after = api.get("/api/interactions/?occurred_after=2026-01-15T00:00:00Z")
    assert new.pk in page_ids(after) and old.pk not in page_ids(after)


def test_it_lets_agents_read_but_not_record_interactions(agent_api):
    jane = CustomerFactory()

    assert agent_api.get("/api/interactions/").status_code == 200
    r = post(agent_api, customer=jane.pk, kind="purchase")
    assert r.status_code == 403
    assert not Interaction.objects.exists()
