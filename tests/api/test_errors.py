"""Bad input gets a 400 (or 404) that says what is wrong, never a 500."""

import pytest
from django.core.exceptions import ValidationError
from rest_framework.exceptions import NotFound
from rest_framework.test import APIRequestFactory

from cxm.api import exception_handler
from cxm.customers.models import Customer
from tests.factories import CustomerFactory, SurveyFactory

pytestmark = pytest.mark.django_db


def handle(error):
    request = APIRequestFactory().get("/")
    return exception_handler(error, {"request": request, "view": None})


def test_it_turns_a_services_field_errors_into_a_400_by_field():
    r = handle(ValidationError({"resolution": "Say how.", "root_cause": "Choose."}))

    assert r.status_code == 400
    assert r.data == {"resolution": ["Say how."], "root_cause": ["Choose."]}


def test_it_puts_a_services_plain_message_under_detail():
    r = handle(ValidationError("This campaign was already sent."))

    assert r.status_code == 400
    assert r.data == {"detail": "This campaign was already sent."}


def test_it_puts_a_services_whole_object_errors_under_non_field_errors():
    r = handle(ValidationError({"__all__": ["Something is off."], "name": ["Bad."]}))

    assert r.status_code == 400
    assert r.data == {"non_field_errors": ["Something is off."], "name": ["Bad."]}


def test_it_fills_in_a_messages_params():
    r = handle(ValidationError("%(key)r is not a property.", params={"key": "x"}))

    assert r.data == {"detail": "'x' is not a property."}


def test_it_answers_409_when_every_message_is_a_conflict():
    sent = ValidationError("Sent already.", code="conflict")

    r = handle(ValidationError({"status": sent}))

    assert r.status_code == 409
    assert r.data == {"status": ["Sent already."]}


def test_it_answers_400_to_a_conflict_beside_a_bad_field():
    sent = ValidationError("Sent already.", code="conflict")

    r = handle(ValidationError({"status": sent, "name": "Bad."}))

    assert r.status_code == 400
    assert r.data == {"status": ["Sent already."], "name": ["Bad."]}


def test_it_answers_404_when_every_message_says_an_id_names_nothing():
    missing = ValidationError("There is no survey 7.", code="not_found")

    r = handle(ValidationError({"survey": missing}))

    assert r.status_code == 404
    assert r.data == {"detail": "There is no survey 7."}


def test_it_leaves_other_errors_to_drf():
    assert handle(NotFound()).status_code == 404
    assert handle(ValueError("bug")) is None  # a real bug stays a 500


@pytest.mark.parametrize(
    "body",
    [
        "{",
        '{"email": }',
        "[1, 2",
        "NaN",
        '{"email": "a@example.com", "name": Infinity}',
        "[" * 100_000 + "]" * 100_000,
        b"\xff\xfe not utf-8",
    ],
    ids=["open", "missing", "unclosed", "nan", "infinity", "deep", "bytes"],
)
def test_it_answers_400_to_malformed_json(api, body):
    r = api.post("/api/customers/", body, content_type="application/json")

    assert r.status_code == 400, r.content
    assert "detail" in r.json()
    assert not Customer.objects.exists()


def test_it_answers_415_to_anything_but_json(api):
    r = api.post("/api/customers/", {"email": "a@example.com"}, format="multipart")

    assert r.status_code == 415


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": 5}, "email"),
        ({"email": ["a@example.com"]}, "email"),
        ({"email": "not an email"}, "email"),
        ({"email": "a@example.com", "name": {"first": "A"}}, "name"),
        ({"email": "a@example.com", "locale": "xx"}, "locale"),
        ({"email": "a@example.com", "name": "x" * 201}, "name"),
        ({"email": "a@example.com", "name": "a\u0000b"}, "name"),
        ({"email": "a@example.com", "name": 12}, "name"),
        ({"email": "a@example.com", "external_id": 12.5}, "external_id"),
        ({"email": " a@example.com"}, "email"),
        ({"email": "a@example.com", "name": " " * 190 + "x" * 11}, "name"),
        ({"email": "a@example.com", "properties": {"a\u0000": 1}}, "properties"),
    ],
)
def test_it_answers_400_naming_the_field_to_wrong_types(api, body, field):
    r = api.post("/api/customers/", body, format="json")

    assert r.status_code == 400, r.content
    assert list(r.json()) == [field]


def test_it_answers_400_to_a_body_that_is_not_an_object(api):
    r = api.post("/api/customers/", [1, 2], format="json")

    assert r.status_code == 400
    assert list(r.json()) == ["non_field_errors"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/customers/99999999999999999999999999/",
        "/api/customers/-1/",
        "/api/customers/abc/",
        "/api/customers/1.5/",
        "/api/campaigns/99999999999999999999999999/",
        "/api/followups/99999999999999999999999999/",
        "/api/customers/?page=99999999999999999999999999",
        "/api/customers/?page=abc",
    ],
)
def test_it_answers_404_to_unknown_ids_and_pages(api, path):
    CustomerFactory()

    r = api.get(path)

    assert r.status_code == 404
    assert r["Content-Type"] == "application/json"


@pytest.mark.parametrize("survey", [0, -1, 999999, 99999999999999999999999999])
def test_it_answers_404_to_an_id_in_a_body_that_names_nothing(api, survey):
    r = api.post("/api/campaigns/", {"name": "X", "survey": survey}, format="json")

    assert r.status_code == 404, r.content
    assert r.json() == {"detail": f"There is no survey {survey}."}


@pytest.mark.parametrize(
    "spelling", [str, lambda pk: pk + 0.5, lambda pk: "one", lambda pk: True]
)
def test_it_answers_400_to_an_id_in_a_body_that_is_no_whole_number(api, spelling):
    survey = spelling(SurveyFactory().pk)

    r = api.post("/api/campaigns/", {"name": "X", "survey": survey}, format="json")

    assert r.status_code == 400, r.content
    assert list(r.json()) == ["survey"]


@pytest.mark.parametrize(
    "expires_at",
    [
        "9999-12-31T23:59:59-05:00",
        "9999-12-30T00:00:00Z",
        "0001-01-02T00:00:00Z",
        "2030-01-01",
        "2030-01-01T09:00:00",
        "2030-01-01 09:00:00Z",
        1893488400,
    ],
)
def test_it_answers_400_to_an_expiry_out_of_range_or_not_rfc_3339(api, expires_at):
    r = api.post(
        "/api/campaigns/",
        {"name": "X", "survey": SurveyFactory().pk, "expires_at": expires_at},
        format="json",
    )

    assert r.status_code == 400, r.content
    assert list(r.json()) == ["expires_at"]


@pytest.mark.parametrize(
    "expires_at, stored",
    [
        ("2030-01-01T09:00:00+09:00", "2030-01-01T00:00:00Z"),
        ("2030-01-01t09:00:00.5z", "2030-01-01T09:00:00.500000Z"),
        ("0001-01-03T00:00:00+23:59", "0001-01-02T00:01:00Z"),
        ("9999-12-29T23:59:59-23:59", "9999-12-30T23:58:59Z"),
    ],
)
def test_it_takes_any_rfc_3339_time_it_can_hold_in_utc(api, expires_at, stored):
    r = api.post(
        "/api/campaigns/",
        {"name": "X", "survey": SurveyFactory().pk, "expires_at": expires_at},
        format="json",
    )

    assert r.status_code == 201, r.content
    assert r.json()["expires_at"] == stored
