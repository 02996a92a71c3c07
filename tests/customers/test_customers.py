"""Customers: who we may email, and the identities that must stay unique."""

import pytest
from django.db import IntegrityError, transaction

from cxm.customers.models import Customer
from cxm.customers.services import (
    customer_mark_bounced,
    customer_mark_complained,
    customer_unsubscribe,
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


def test_it_keeps_the_first_complaint_time():
    customer = CustomerFactory()
    customer_mark_complained(customer_id=customer.pk)
    first = Customer.objects.get(pk=customer.pk).complained_at

    customer_mark_complained(customer_id=customer.pk)

    assert first is not None
    assert Customer.objects.get(pk=customer.pk).complained_at == first
