"""Customers in the admin: written through the services, imported and exported."""

import pytest

from cxm.customers import services
from cxm.customers.models import Customer
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def service_calls(monkeypatch):
    """The names of the customer services called, in order (they still run)."""
    calls = []
    for name in ("customer_create", "customer_update"):
        real = getattr(services, name)

        def spy(*, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(**kwargs)

        monkeypatch.setattr(services, name, spy)
    return calls


FORM = {"name": "", "locale": "en", "external_id": "", "properties": "{}"}


def test_it_adds_a_customer_through_the_service(admin_client, service_calls):
    r = admin_client.post(
        "/admin/customers/customer/add/",
        {**FORM, "email": "jane@example.com", "properties": '{"plan": "pro"}'},
    )

    assert r.status_code == 302, r.content.decode()
    assert service_calls == ["customer_create"]
    customer = Customer.objects.get()
    assert customer.properties == {"plan": "pro"}


def test_it_changes_a_customer_through_the_service(admin_client, service_calls):
    customer = CustomerFactory(email="jane@example.com")
    services.customer_unsubscribe(customer=customer)

    r = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {**FORM, "email": "jane@example.com", "name": "Jane Doe"},
    )

    assert r.status_code == 302, r.content.decode()
    assert service_calls == ["customer_update"]
    customer.refresh_from_db()
    assert customer.name == "Jane Doe"
    assert customer.unsubscribed_at is not None


def test_it_says_in_the_form_that_the_email_is_taken_in_another_case(admin_client):
    CustomerFactory(email="jane@example.com")

    r = admin_client.post(
        "/admin/customers/customer/add/", {**FORM, "email": "JANE@example.com"}
    )

    assert r.status_code == 200
    assert "A customer with this email already exists." in r.content.decode()
    assert Customer.objects.count() == 1
