"""The OpenAPI schema: valid, documented without a CDN, and true to the API."""

import re

import hypothesis
import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.validators import validate_email
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema
from hypothesis import Phase

from cxm.api import EMAIL_PATTERN
from cxm.wsgi import application
from tests.api import schemathesis_hooks  # noqa: F401 (registers its hooks)
from tests.api.helpers import answer
from tests.factories import CampaignFactory, CustomerFactory, agent

pytestmark = pytest.mark.django_db

# Examples per operation and generation mode: enough to try every field with
# good and bad values, few enough for about a minute on two cores.
EXAMPLES = 25


def test_it_generates_a_valid_schema_without_warnings(tmp_path):
    # Raises SchemaGenerationError on any warning, CommandError if invalid.
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yml"),
    )
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)
    assert "/api/followups/{id}/" in schema["paths"]
    assert "/api/metrics/nps/" in schema["paths"]


def test_it_documents_the_errors_of_every_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403", "429"} <= codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "415"} <= codes, (method, path)
            names = {p["name"] for p in operation.get("parameters", [])}
            if {"id", "page"} & names:
                assert "404" in codes, (method, path)
    root_cause = schema["components"]["schemas"]["FollowUp"]["properties"]
    assert {"$ref": "#/components/schemas/BlankEnum"} in root_cause["root_cause"][
        "oneOf"
    ]


@pytest.mark.parametrize(
    "email",
    ["a@b.co", "A.b+c@x-y.example.COM", '"a@b"@x.com', "a@b.xn--p1ai"]
    + ["0@0.a", "a@b.c0", "a@b.-co", "a..b@x.com", "a@-x.com", '"a b"@x.com'],
)
def test_its_email_pattern_takes_what_django_takes(email):
    try:
        validate_email(email)
        valid = True
    except ValidationError:
        valid = False

    assert bool(re.fullmatch(EMAIL_PATTERN, email)) == valid


def test_it_serves_the_docs_from_the_sidecar_not_a_cdn(api):
    r = api.get("/api/docs/")

    assert r.status_code == 200
    html = r.content.decode()
    assert (
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    )
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_it_lets_staff_browse_the_api_in_a_browser(api):
    followup = answer(2).followup
    for path in ["/api/", "/api/campaigns/", f"/api/followups/{followup.pk}/"]:
        r = api.get(path, HTTP_ACCEPT="text/html")

        assert r.status_code == 200, path
        assert r["Content-Type"].startswith("text/html")


def seed() -> dict[str, int]:
    """Returns an existing id per resource, so cases reach past the 404."""
    agent()
    customer = CustomerFactory(properties={"plan": "pro"})
    campaign = CampaignFactory()
    response = answer(2, campaign=campaign)
    answer(9, campaign=campaign)
    return {
        "/api/customers/": customer.pk,
        "/api/surveys/": campaign.survey_id,
        "/api/campaigns/": CampaignFactory().pk,  # a draft to change and send
        "/api/invitations/": response.invitation_id,
        "/api/responses/": response.pk,
        "/api/followups/": response.followup.pk,
    }


@pytest.fixture
def keep_connection():
    """Keeps the test's database connection (and transaction) across WSGI calls."""
    # Django's own test client does the same: a real request closes connections.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _strategies(schema, ids: dict[str, int]) -> list:
    """A strategy per operation and generation mode, positive cases with ids that
    exist (so they reach past the 404), negative ones with whatever they draw."""
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        existing = next(
            (pk for prefix, pk in ids.items() if operation.path.startswith(prefix)),
            None,
        )
        raw = operation.definition.raw
        for mode in schemathesis.GenerationMode:
            if not mode.is_positive and not (
                raw.get("parameters") or raw.get("requestBody")
            ):
                continue  # nothing to send wrong (GET /api/surveys/templates/)
            known = (
                {"id": existing}
                if "{id}" in operation.path and mode.is_positive
                else None
            )
            strategies.append(operation.as_strategy(mode, path_parameters=known))
    return strategies


def test_it_keeps_to_its_schema(token, keep_connection):
    """Schemathesis with all its checks: every answer is documented (status, body,
    headers), schema-valid requests are accepted and invalid ones refused."""
    ids = seed()
    auth = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, headers=auth)

    for strategy in _strategies(schema, ids):

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(hypothesis.HealthCheck),
        )
        @hypothesis.given(case=strategy)
        def call(case):
            response = case.call(headers=auth)
            # No `checks`: all of schemathesis's checks.
            case.validate_response(response, headers=auth)

        call()
