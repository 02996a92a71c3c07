"""Customers: who we may email, and the identities that must stay unique."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from cxm.api import CONFLICT, error_codes
from cxm.customers import services
from cxm.customers.models import Customer
from cxm.customers.services import (
    customer_create,
    customer_mark_bounced,
    customer_mark_complained,
    customer_unsubscribe,
    customer_update,
)
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_it_refuses_the_same_email_in_another_case():
    CustomerFactory(email="Foo@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(email="foo@example.com")
    assert Customer.objects.count() == 1


def test_it_refuses_a_second_customer_with_the_same_external_id():
    CustomerFactory(external_id="crm-42")
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(external_id="crm-42")
    assert Customer.objects.filter(external_id="crm-42").count() == 1


def test_it_allows_many_customers_without_an_external_id():
    CustomerFactory.create_batch(3, external_id="")
    assert Customer.objects.filter(external_id="").count() == 3


def test_it_leaves_unsubscribed_bounced_and_complained_customers_out_of_contactable():
    reachable = CustomerFactory()
    unsubscribed = CustomerFactory()
    bounced = CustomerFactory()
    complained = CustomerFactory()
    customer_unsubscribe(customer=unsubscribed)
    customer_mark_bounced(customer_id=bounced.pk)
    customer_mark_complained(customer_id=complained.pk)

    assert list(Customer.objects.contactable()) == [reachable]
    for customer in (unsubscribed, bounced, complained):
        customer.refresh_from_db()
        assert not customer.is_contactable
    assert reachable.is_contactable


def test_it_keeps_the_first_unsubscribe_time():
    customer = CustomerFactory()
    first = customer_unsubscribe(customer=customer).unsubscribed_at
    assert first is not None

    again = customer_unsubscribe(customer=Customer.objects.get(pk=customer.pk))

    assert again.unsubscribed_at == first
    assert Customer.objects.get(pk=customer.pk).unsubscribed_at == first


def test_it_keeps_the_first_bounce_time():
    customer = CustomerFactory()
    customer_mark_bounced(customer_id=customer.pk)
    first = Customer.objects.get(pk=customer.pk).bounced_at

    customer_mark_bounced(customer_id=customer.pk)

    assert first is not None
    assert Customer.objects.get(pk=customer.pk).bounced_at == first


def test_it_creates_a_customer_through_the_service():
    customer = customer_create(
        email="jane@example.com",
        name="Jane",
        locale="ko",
        external_id="crm-1",
        properties={"plan": "pro"},
    )

    saved = Customer.objects.get()
    assert saved.pk == customer.pk
    assert (saved.email, saved.name, saved.locale, saved.external_id) == (
        "jane@example.com",
        "Jane",
        "ko",
        "crm-1",
    )
    assert saved.properties == {"plan": "pro"}


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"email": "not an email"}, "email", "Enter a valid email address."),
        ({"locale": "fr"}, "locale", "Value 'fr' is not a valid choice."),
        ({"name": "x" * 201}, "name", "Ensure this value has at most 200 characters"),
        ({"properties": ["pro"]}, "properties", "Expected an object"),
    ],
)
def test_it_refuses_a_customer_with_the_models_message(fields, field, message):
    with pytest.raises(ValidationError) as error:
        customer_create(**{"email": "jane@example.com", **fields})

    assert list(error.value.message_dict) == [field]
    assert message in error.value.message_dict[field][0]
    assert not Customer.objects.exists()


def test_it_refuses_an_email_another_customer_has_in_another_case_as_a_conflict():
    CustomerFactory(email="Jane@Example.com")

    with pytest.raises(ValidationError) as error:
        customer_create(email="jane@example.COM")

    assert error.value.message_dict == {
        "email": ["A customer with this email already exists."]
    }
    assert error_codes(error.value) == {CONFLICT}
    assert Customer.objects.count() == 1


def test_it_refuses_an_external_id_another_customer_has_as_a_conflict():
    CustomerFactory(external_id="crm-1")

    with pytest.raises(ValidationError) as error:
        customer_create(email="new@example.com", external_id="crm-1")

    assert error.value.message_dict == {
        "external_id": ["A customer with this external id already exists."]
    }
    assert error_codes(error.value) == {CONFLICT}


def test_it_turns_a_duplicate_only_the_database_sees_into_the_same_conflict(
    monkeypatch,
):
    # As when two writers check at once: only the constraint sees the duplicate.
    CustomerFactory(email="jane@example.com")
    monkeypatch.setattr(services, "customer_check_unique", lambda customer: None)

    with pytest.raises(ValidationError) as error:
        customer_create(email="JANE@example.com")

    assert error.value.message_dict == {
        "email": ["A customer with this email already exists."]
    }
    assert error_codes(error.value) == {CONFLICT}
    assert Customer.objects.count() == 1


def test_it_updates_only_the_fields_given():
    customer = CustomerFactory(name="Old", email="jane@example.com")
    # An unsubscribe lands after this copy was read; the update must keep it.
    customer_unsubscribe(customer=Customer.objects.get(pk=customer.pk))

    customer_update(customer=customer, name="New", email="Jane@example.com")

    saved = Customer.objects.get()
    assert (saved.name, saved.email) == ("New", "Jane@example.com")
    assert saved.unsubscribed_at is not None


def test_it_leaves_the_customer_as_it_was_when_an_update_is_refused():
    CustomerFactory(email="taken@example.com")
    customer = CustomerFactory(email="jane@example.com", name="Jane")

    with pytest.raises(ValidationError):
        customer_update(customer=customer, email="TAKEN@example.com", name="J")

    assert (customer.email, customer.name) == ("jane@example.com", "Jane")
    saved = Customer.objects.get(pk=customer.pk)
    assert (saved.email, saved.name) == ("jane@example.com", "Jane")


def test_it_refuses_to_update_a_field_the_service_does_not_own():
    customer = CustomerFactory()

    with pytest.raises(TypeError):
        customer_update(customer=customer, bounced_at=None)


def test_it_keeps_the_first_complaint_time():
    customer = CustomerFactory()
    customer_mark_complained(customer_id=customer.pk)
    first = Customer.objects.get(pk=customer.pk).complained_at

    customer_mark_complained(customer_id=customer.pk)

    assert first is not None
    assert Customer.objects.get(pk=customer.pk).complained_at == first
