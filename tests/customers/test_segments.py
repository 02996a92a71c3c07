"""Segments: saved conditions on customers, their history, combined with all/any."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from cxm.customers.models import Segment
from cxm.customers.selectors import segment_counts, segment_customers
from cxm.customers.services import (
    customer_mark_bounced,
    customer_unsubscribe,
    interaction_record,
    segment_create,
    segment_update,
)
from surveys.models import Invitation
from surveys.services import response_record
from tests.factories import CampaignFactory, CustomerFactory, InvitationFactory

pytestmark = pytest.mark.django_db


def members(*conditions, match="all", **segment) -> set[str]:
    segment = segment_create(
        name=f"s{Segment.objects.count()}",
        conditions=list(conditions),
        match=match,
    )
    return {c.email for c in segment_customers(segment=segment)}


def prop(name, op, value=None):
    condition = {"type": "property", "name": name, "op": op}
    if value is not None:
        condition["value"] = value
    return condition


@pytest.fixture
def people():
    def customer(email, **properties):
        return CustomerFactory(email=f"{email}@example.com", properties=properties)

    return {
        "ann": customer("ann", plan="pro", seats=12, region="Seoul Gangnam"),
        "bob": customer("bob", plan="free", seats=1, region="Busan"),
        "cy": customer("cy", plan="enterprise", seats="50"),
        "dee": customer("dee", plan="pro", seats=40.5, beta=True),
        "eve": customer("eve"),
    }


def test_it_holds_every_customer_without_conditions(people):
    assert members() == {f"{n}@example.com" for n in people}
    assert {c.email for c in segment_customers(segment=None)} == members()


def test_it_matches_a_property_equal_to_a_value(people):
    assert members(prop("plan", "equals", "pro")) == {
        "ann@example.com",
        "dee@example.com",
    }
    assert members(prop("beta", "equals", True)) == {"dee@example.com"}
    assert members(prop("seats", "equals", 12)) == {"ann@example.com"}


def test_it_matches_a_property_that_is_one_of_several_values(people):
    assert members(prop("plan", "one_of", ["free", "enterprise"])) == {
        "bob@example.com",
        "cy@example.com",
    }


def test_it_matches_a_property_containing_text_in_any_case(people):
    assert members(prop("region", "contains", "seoul")) == {"ann@example.com"}


def test_it_compares_numbers_and_leaves_out_text_and_missing_values(people):
    # cy's seats are the text "50": not a number, so in no range.
    assert members(prop("seats", "gte", 12)) == {"ann@example.com", "dee@example.com"}
    assert members(prop("seats", "lte", 12)) == {"ann@example.com", "bob@example.com"}
    assert members(prop("seats", "between", [2, 41])) == {
        "ann@example.com",
        "dee@example.com",
    }


def test_it_matches_a_property_that_is_set_or_not(people):
    assert members(prop("beta", "is_set")) == {"dee@example.com"}
    assert members(prop("plan", "is_not_set")) == {"eve@example.com"}


def test_it_matches_customer_fields(people):
    people["ann"].locale = "ko"
    people["ann"].save()
    field = {"type": "field", "field": "locale", "op": "equals", "value": "ko"}
    assert members(field) == {"ann@example.com"}
    email = {
        "type": "field",
        "field": "email",
        "op": "equals",
        "value": "BOB@example.com",
    }
    assert members(email) == {"bob@example.com"}


def test_it_combines_conditions_with_all_or_any(people):
    pro = prop("plan", "equals", "pro")
    big = prop("seats", "gte", 20)
    assert members(pro, big) == {"dee@example.com"}
    assert members(pro, big, match="any") == {"ann@example.com", "dee@example.com"}


def test_it_matches_a_recent_interaction_of_a_kind(people):
    now = timezone.now()
    interaction_record(customer=people["ann"], kind="purchase", occurred_at=now)
    interaction_record(
        customer=people["bob"], kind="purchase", occurred_at=now - timedelta(days=40)
    )
    interaction_record(customer=people["cy"], kind="support_call", occurred_at=now)
    purchase = {"type": "interaction", "kind": "purchase", "within_days": 30}

    assert members(purchase) == {"ann@example.com"}
    assert members({**purchase, "had": False}) == {
        f"{n}@example.com" for n in ("bob", "cy", "dee", "eve")
    }


def test_it_matches_a_detractor_answer_of_a_survey_kind_in_a_window(people):
    detractor = InvitationFactory(customer=people["ann"])
    promoter = InvitationFactory(customer=people["bob"])
    old = InvitationFactory(customer=people["cy"])
    response_record(invitation=detractor, score=3)
    response_record(invitation=promoter, score=10)
    old_response = response_record(invitation=old, score=2)
    old_response.created_at = timezone.now() - timedelta(days=100)
    old_response.save(update_fields=["created_at"])
    condition = {
        "type": "answered",
        "survey_kind": "nps",
        "bucket": "detractor",
        "within_days": 90,
    }

    assert members(condition) == {"ann@example.com"}
    del condition["bucket"]
    assert members(condition) == {"ann@example.com", "bob@example.com"}
    assert members({**condition, "survey_kind": "csat"}) == set()


def test_it_matches_customers_not_surveyed_in_a_number_of_days(people):
    campaign = CampaignFactory()
    now = timezone.now()
    for name, days_ago in [("ann", 5), ("bob", 45)]:
        Invitation.objects.create(
            campaign=campaign,
            customer=people[name],
            status="sent",
            sent_at=now - timedelta(days=days_ago),
        )
    Invitation.objects.create(campaign=campaign, customer=people["cy"])  # queued

    assert members({"type": "not_surveyed", "days": 30}) == {
        f"{n}@example.com" for n in ("bob", "cy", "dee", "eve")
    }


def test_it_counts_members_and_those_who_may_be_emailed(people):
    customer_unsubscribe(customer=people["ann"])
    customer_mark_bounced(customer_id=people["dee"].pk)
    pro = segment_create(name="Pro", conditions=[prop("plan", "equals", "pro")])

    assert segment_counts(segment=pro) == {"customers": 2, "contactable": 0}
    assert segment_counts(segment=None) == {"customers": 5, "contactable": 3}


def test_it_counts_a_segment_in_one_query_whatever_its_conditions(
    people, django_assert_num_queries
):
    segment = segment_create(
        name="Busy",
        conditions=[
            prop("plan", "one_of", ["pro", "free"]),
            prop("seats", "between", [1, 100]),
            {"type": "interaction", "kind": "purchase", "within_days": 30},
            {"type": "answered", "survey_kind": "nps", "within_days": 30},
            {"type": "not_surveyed", "days": 30},
        ],
        match="any",
    )
    with django_assert_num_queries(1):
        counts = segment_counts(segment=segment)
    # Nobody was surveyed, so "not surveyed" takes in everyone.
    assert counts["customers"] == 5


@pytest.mark.parametrize(
    "condition, message",
    [
        ("plan=pro", "Condition 1: A condition must be an object."),
        ({"type": "shoe_size"}, "Condition 1: type must be one of"),
        ({"type": {}, "days": 1}, "Condition 1: type must be text or a number."),
        (
            {"type": "answered", "survey_kind": {}, "within_days": 9},
            "Condition 1: survey_kind must be text or a number.",
        ),
        (prop("plan", ["equals"], 1), "Condition 1: op must be text or a number."),
        (prop("plan", "bigger", 1), "Condition 1: op must be one of"),
        (prop("plan", "equals"), "Condition 1: equals needs a value."),
        (prop("plan", "equals", {"a": 1}), "must be text, a number or true/false"),
        (prop("plan", "one_of", []), "one_of needs a list of 1 to 500 values."),
        (prop("seats", "gte", "10"), "The value must be a number."),
        (prop("seats", "between", [9, 1]), "between needs the low end first."),
        (prop("a__b", "equals", 1), "is not a property name"),
        (
            {"type": "property", "name": "beta", "op": "is_set", "value": 1},
            "does not take value.",
        ),
        (
            {"type": "interaction", "kind": "purchase"},
            "This condition needs within_days.",
        ),
        (
            {"type": "interaction", "kind": "purchase", "within_days": 0},
            "within_days must be a whole number of days from 1 to 36500.",
        ),
        (
            {
                "type": "answered",
                "survey_kind": "nps",
                "bucket": "easy",
                "within_days": 9,
            },
            "bucket must be one of detractor, passive, promoter.",
        ),
        ({"type": "not_surveyed", "days": 30, "x": 1}, "does not take x."),
    ],
)
def test_it_names_what_is_wrong_with_a_condition(condition, message):
    with pytest.raises(ValidationError) as e:
        segment_create(name="Bad", conditions=[condition])
    assert any(message in m for m in e.value.message_dict["conditions"]), e.value
    assert not Segment.objects.exists()


def test_it_refuses_more_than_fifty_conditions():
    with pytest.raises(ValidationError) as e:
        segment_create(name="Many", conditions=[prop("a", "is_set")] * 51)
    assert "at most 50 conditions" in str(e.value)


def test_it_invites_by_a_changed_segment(people):
    segment = segment_create(name="Plan", conditions=[prop("plan", "equals", "pro")])
    segment_update(segment=segment, conditions=[prop("plan", "equals", "free")])
    assert {c.email for c in segment_customers(segment=segment)} == {"bob@example.com"}


def test_it_takes_a_whole_number_of_days_written_as_a_decimal(people):
    segment = segment_create(
        name="Recent",
        conditions=[{"type": "not_surveyed", "days": 30.0}],
    )
    assert segment.conditions == [{"type": "not_surveyed", "days": 30}]
    assert segment_counts(segment=segment)["customers"] == 5
