"""Interactions: one event in a customer's history, recorded once per external id."""

import pytest
from django.core.exceptions import ValidationError

from cxm.customers.models import Interaction
from cxm.customers.services import interaction_record
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_records_an_interaction_with_the_defaults():
    jane = CustomerFactory()

    interaction, created = interaction_record(customer=jane, kind="purchase")

    assert created
    assert interaction.channel == "other"
    assert interaction.occurred_at is not None
    assert list(jane.interactions.all()) == [interaction]


def test_it_returns_the_first_recording_for_a_retry():
    jane = CustomerFactory()
    first, _ = interaction_record(customer=jane, kind="purchase", external_id="o-1")

    again, created = interaction_record(
        customer=jane, kind="purchase", external_id="o-1"
    )

    assert (again.pk, created) == (first.pk, False)
    assert Interaction.objects.count() == 1


def test_it_refuses_an_external_id_of_another_kind():
    jane = CustomerFactory()
    interaction_record(customer=jane, kind="purchase", external_id="o-1")

    with pytest.raises(ValidationError) as e:
        interaction_record(customer=jane, kind="refund", external_id="o-1")
    assert e.value.error_dict["external_id"][0].code == "conflict"
    assert Interaction.objects.count() == 1


def test_it_records_many_interactions_without_an_external_id():
    jane = CustomerFactory()
    for _ in range(3):
        interaction_record(customer=jane, kind="app_visit")
    assert jane.interactions.count() == 3


@pytest.mark.parametrize("kind", ["", "Purchase", "1st_visit", "a b", "x" * 65])
def test_it_refuses_a_kind_that_is_not_an_identifier(kind):
    with pytest.raises(ValidationError) as e:
        interaction_record(customer=CustomerFactory(), kind=kind)
    assert "kind" in e.value.error_dict
    assert not Interaction.objects.exists()


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_it_records_an_interaction_from_the_admin_and_keeps_it_read_only(
    admin_client,
):
    jane = CustomerFactory()

    r = admin_client.post(
        "/admin/customers/interaction/add/",
        {
            "customer": jane.pk,
            "kind": "support_call",
            "channel": "phone",
            "occurred_at_0": "2026-11-20",
            "occurred_at_1": "10:00:00",
            "properties": "{}",
            "external_id": "ticket-9",
        },
    )

    assert r.status_code == 302, r.content.decode()
    interaction = Interaction.objects.get()
    assert (interaction.kind, interaction.external_id) == ("support_call", "ticket-9")
    page = admin_client.get(f"/admin/customers/interaction/{interaction.pk}/change/")
    assert page.status_code == 200
    assert b'name="kind"' not in page.content
    assert admin_client.get("/admin/customers/interaction/").status_code == 200


def test_it_names_a_used_external_id_in_the_admin_form(admin_client):
    jane = CustomerFactory()
    interaction_record(customer=jane, kind="purchase", external_id="o-1")

    r = admin_client.post(
        "/admin/customers/interaction/add/",
        {
            "customer": jane.pk,
            "kind": "purchase",
            "channel": "web",
            "occurred_at_0": "2026-11-20",
            "occurred_at_1": "10:00:00",
            "properties": "{}",
            "external_id": "o-1",
        },
    )

    assert r.status_code == 200
    assert "An interaction with this external id already exists." in r.content.decode()
    assert Interaction.objects.count() == 1
