"""The OpenAPI schema: valid, documented without a CDN, and true to the API."""

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import requests
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.validators import validate_email
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from cxm.api import EMAIL_PATTERN
from cxm.customers.services import interaction_record, segment_create
from journeys.services import journey_create, persona_create
from tests.api.helpers import answer
from tests.factories import CampaignFactory, CustomerFactory, agent
from tests.processes import database_url_of_test_db, free_port, process_group_stop

pytestmark = pytest.mark.django_db

# Examples per operation in the fuzzing phase (the coverage phase adds its own): enough
# to try every field with good and bad values, few enough for a minute on two cores.
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
    followup = schema["components"]["schemas"]["FollowUp"]["properties"]
    # A managed list now: its code, null until resolved.
    assert followup["root_cause"]["type"] == ["string", "null"]


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
    interaction, _ = interaction_record(customer=customer, kind="purchase")
    segment = segment_create(
        name="Pro",
        conditions=[
            {"type": "property", "name": "plan", "op": "equals", "value": "pro"}
        ],
    )
    return {
        "/api/customers/": customer.pk,
        "/api/interactions/": interaction.pk,
        "/api/segments/": segment.pk,
        "/api/surveys/": campaign.survey_id,
        "/api/campaigns/": CampaignFactory().pk,  # a draft to change and send
        "/api/invitations/": response.invitation_id,
        "/api/responses/": response.pk,
        "/api/followups/": response.followup.pk,
        "/api/journeys/": journey_create(name="Subscriber").pk,
        "/api/personas/": persona_create(name="Pro user", segment=segment).pk,
    }


# The CSV imports, left out: a CSV upload is valid by its content (UTF-8, a header
# naming an email column), which JSON Schema's "binary string" cannot say, so
# schemathesis' valid and invalid bodies mean nothing there (a PNG is "valid").
# tests/api/test_imports.py shows what they take and refuse.
IMPORT_PATHS = ("/api/customers/import/", "/api/interactions/import/")

# The command line an integrator would run, the hooks aside (see the README).
SCHEMATHESIS = [
    "run",
    "--checks",
    "all",  # every check, not only server errors
    "--mode",
    "all",  # schema-valid requests must be taken, invalid ones refused
    "--phases",
    "examples,coverage,fuzzing,stateful",
    "--max-examples",
    str(EXAMPLES),
    "--seed",
    "1",  # the same cases each run; a finding reproduces
    "--generation-deterministic",  # which keeps no cases from an earlier run
    "--suppress-health-check",
    "all",
]


@pytest.fixture
def api_server(transactional_db, tmp_path):
    """
    Returns the URL of gunicorn serving cxm on the test database, as in production
    (Django's live server answers a kept-alive connection 40 ms late). Its Celery
    tasks go to a queue of its own, emptied after the test.
    """
    port = free_port()
    queue = f"cxm-schema-{uuid.uuid4().hex}"
    log = tmp_path / "gunicorn.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "CELERY_QUEUE": queue,
        "SITE_URL": f"http://127.0.0.1:{port}",
        # The run calls far more often than any client would.
        "API_THROTTLE_RATE": "1000000/m",
        "TOKEN_MISS_RATE": "1000000/h",
        "LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "cxm.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "2",
                "--no-control-socket",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{url}/api/", timeout=10)
                break
            # Bound but still booting its workers: refused, or slow to answer on
            # a busy machine.
            except (requests.ConnectionError, requests.Timeout):
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gunicorn did not start:\n{log.read_text()}")
                time.sleep(0.2)
        yield url
    finally:
        # Before the test database is flushed: no connection of its may remain.
        process_group_stop(server)
        broker = os.environ.get("CELERY_BROKER_URL", "")
        if broker.startswith("redis"):
            redis.Redis.from_url(broker).delete(
                queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"
            )


def test_it_keeps_to_its_schema(api_server, token, tmp_path):
    """
    Schemathesis with all its checks, every phase (including the stateful one that
    follows the schema's links) against cxm under gunicorn: every answer is
    documented (status, body, headers), schema-valid requests are accepted and
    invalid ones refused. Any finding fails the test and is printed with a curl to
    reproduce it.
    """
    ids = seed()
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "".join(
            f'[[operations]]\ninclude-path-regex = "^{prefix}{{id}}/"\n'
            f'parameters = {{ "path.id" = {pk} }}\n\n'
            for prefix, pk in ids.items()
        )
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "--config-file",
            str(config),
            *SCHEMATHESIS,
            *(option for path in IMPORT_PATHS for option in ("--exclude-path", path)),
            "--header",
            f"Authorization: Token {token}",
            f"{api_server}/api/schema/",
        ],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks",
            # Not the customers' seed, which the run deletes.
            "CXM_SCHEMA_CUSTOMER": str(CustomerFactory().pk),
            "NO_COLOR": "1",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )

    report = result.stdout + result.stderr
    assert result.returncode == 0, report[-20000:]
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = sum(
        len(operations)
        for path, operations in schema["paths"].items()
        if path not in IMPORT_PATHS
    )
    assert f"Tested: {operations}\n" in report, report[-3000:]  # every operation
