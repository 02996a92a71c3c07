"""Customers over the API: create, read, update, delete; one per email and id."""

import pytest

from cxm.customers import services
from cxm.customers.models import Customer
from tests.api.helpers import page_ids
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_it_creates_a_customer(api):
    r = api.post(
        "/api/customers/",
        {
            "email": "jane@example.com",
            "name": "Jane",
            "locale": "ko",
            "external_id": "crm-1",
            "properties": {"plan": "pro", "seats": 3},
        },
        format="json",
    )

    assert r.status_code == 201, r.content
    customer = Customer.objects.get()
    assert r.json()["id"] == customer.pk
    assert (customer.email, customer.name, customer.locale) == (
        "jane@example.com",
        "Jane",
        "ko",
    )
    assert customer.external_id == "crm-1"
    assert customer.properties == {"plan": "pro", "seats": 3}


def test_it_lists_and_retrieves_customers(api):
    b = CustomerFactory(email="b@example.com")
    a = CustomerFactory(email="a@example.com")

    assert page_ids(api.get("/api/customers/")) == [a.pk, b.pk]
    r = api.get(f"/api/customers/{a.pk}/")
    assert r.status_code == 200
    assert r.json()["email"] == "a@example.com"


def test_it_finds_a_customer_by_email_in_any_case_and_by_external_id(api):
    jane = CustomerFactory(email="jane@example.com", external_id="crm-7")
    CustomerFactory()

    assert page_ids(api.get("/api/customers/?email=JANE@example.com")) == [jane.pk]
    assert page_ids(api.get("/api/customers/?external_id=crm-7")) == [jane.pk]


def test_it_updates_a_customer(api):
    customer = CustomerFactory(name="Old")

    r = api.patch(
        f"/api/customers/{customer.pk}/",
        {"name": "New", "properties": {"plan": "free"}},
        format="json",
    )

    assert r.status_code == 200, r.content
    customer.refresh_from_db()
    assert customer.name == "New"
    assert customer.properties == {"plan": "free"}


def test_it_keeps_a_customers_own_email_on_update_in_another_case(api):
    customer = CustomerFactory(email="jane@example.com")

    r = api.put(
        f"/api/customers/{customer.pk}/", {"email": "Jane@Example.com"}, format="json"
    )

    assert r.status_code == 200, r.content
    customer.refresh_from_db()
    assert customer.email == "Jane@Example.com"


def test_it_deletes_a_customer(api):
    customer = CustomerFactory()

    assert api.delete(f"/api/customers/{customer.pk}/").status_code == 204
    assert not Customer.objects.exists()


def test_it_answers_409_to_a_duplicate_email_in_another_case_naming_email(api):
    CustomerFactory(email="jane@example.com")

    r = api.post("/api/customers/", {"email": "JANE@Example.COM"}, format="json")

    assert r.status_code == 409
    assert list(r.json()) == ["email"]
    assert "already exists" in r.json()["email"][0]
    assert Customer.objects.count() == 1


def test_it_answers_409_to_changing_an_email_into_anothers(api):
    CustomerFactory(email="jane@example.com")
    other = CustomerFactory(email="joe@example.com")

    r = api.patch(
        f"/api/customers/{other.pk}/", {"email": "Jane@example.com"}, format="json"
    )

    assert r.status_code == 409
    assert list(r.json()) == ["email"]


def test_it_answers_409_to_a_duplicate_external_id_naming_it(api):
    CustomerFactory(external_id="crm-1")

    r = api.post(
        "/api/customers/",
        {"email": "new@example.com", "external_id": "crm-1"},
        format="json",
    )

    assert r.status_code == 409
    assert list(r.json()) == ["external_id"]
    assert r.json()["external_id"] == [
        "A customer with this external id already exists."
    ]


def test_it_allows_many_customers_without_an_external_id(api):
    CustomerFactory(external_id="")

    r = api.post(
        "/api/customers/",
        {"email": "new@example.com", "external_id": ""},
        format="json",
    )

    assert r.status_code == 201, r.content


def test_it_requires_an_email(api):
    r = api.post("/api/customers/", {"name": "Nobody"}, format="json")

    assert r.status_code == 400
    assert list(r.json()) == ["email"]
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "properties",
    [
        '"pro"',
        '["plan", "pro"]',
        '{"plan": "a\\u0000b"}',
        '{"note": "\\ud800"}',
        '{"big": 1e999}',
    ],
    ids=["text", "list", "nul", "surrogate", "infinity"],
)
def test_it_refuses_properties_the_database_cannot_store(api, properties):
    # Raw JSON: the test client's encoder cannot write a lone surrogate or 1e999.
    r = api.post(
        "/api/customers/",
        '{"email": "new@example.com", "properties": ' + properties + "}",
        content_type="application/json",
    )

    assert r.status_code == 400, r.content
    assert list(r.json()) == ["properties"]


def test_it_says_properties_must_be_an_object(api):
    r = api.post(
        "/api/customers/",
        {"email": "new@example.com", "properties": "pro"},
        format="json",
    )

    assert r.json() == {"properties": ['Expected an object, e.g. {"plan": "pro"}.']}


def test_it_refuses_properties_nested_too_deeply(api):
    deep = {}
    for _ in range(40):
        deep = {"a": deep}

    r = api.post(
        "/api/customers/",
        {"email": "new@example.com", "properties": deep},
        format="json",
    )

    assert r.status_code == 400
    assert list(r.json()) == ["properties"]


@pytest.mark.parametrize("field", ["email", "external_id"])
def test_it_answers_409_when_a_duplicate_slips_past_validation(api, monkeypatch, field):
    # As when two requests validate at once: only the database's constraint
    # sees the duplicate.
    CustomerFactory(email="jane@example.com", external_id="crm-1")
    monkeypatch.setattr(services, "customer_check_unique", lambda customer: None)

    r = api.post(
        "/api/customers/",
        {
            "email": "JANE@example.com" if field == "email" else "new@example.com",
            "external_id": "crm-1" if field == "external_id" else "",
        },
        format="json",
    )

    assert r.status_code == 409, r.content
    assert list(r.json()) == [field]
    assert Customer.objects.count() == 1
    # The failed insert was rolled back to its savepoint: the connection still works.
    assert api.get("/api/customers/").status_code == 200


def test_it_lists_customers_in_a_constant_number_of_queries(
    api, django_assert_num_queries
):
    CustomerFactory.create_batch(2)
    with django_assert_num_queries(3) as few:
        assert len(page_ids(api.get("/api/customers/"))) == 2

    CustomerFactory.create_batch(8)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(page_ids(api.get("/api/customers/"))) == 10
