"""
The closed loop end to end, on the real components: the API creates customers and
sends a campaign, a Celery worker emails the invitations through a real SMTP server,
a customer answers from the link, the detractor's follow-up is assigned and, once
overdue, escalated by beat's sweep exactly once; CX staff resolve it over the API.
"""

import re
import time
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_celery_beat.models import PeriodicTask
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory, agent, manager

from .conftest import SWEEP_INTERVAL, wait_for

pytestmark = pytest.mark.e2e

# The follow-up SLA during the test: overdue a few seconds after the answer.
SLA_SECONDS = 5
HTTP_TIMEOUT = 15


class Inputs(HTMLParser):
    """Collects the attributes of every <input> of a page."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def handle_starttag(self, tag, attrs):
        if tag == "input":
            self.inputs.append(dict(attrs))


def inputs_of(html: str) -> list[dict]:
    parser = Inputs()
    parser.feed(html)
    return parser.inputs


@pytest.fixture
def short_sla(settings):
    settings.FOLLOWUP_SLA_HOURS = SLA_SECONDS / 3600


@pytest.fixture
def people(transactional_db):
    """
    CX staff with an API token, an agent (in "CX agents") and a manager (in "CX
    managers"), each emailed at <username>@cx.example.com.
    """
    staff = UserFactory(username="cx-staff", is_staff=True)
    return {
        "staff": staff,
        "token": Token.objects.create(user=staff).key,
        "agent": agent(username="agent"),
        "manager": manager(username="manager"),
    }


@pytest.fixture
def staff_api(people, live_server, http):
    """call(method, path, expected status, **requests kwargs) → the JSON body, as
    CX staff with their API token."""
    api = http()
    api.headers["Authorization"] = f"Token {people['token']}"

    def call(method: str, path: str, expected: int, **kwargs) -> dict:
        r = api.request(method, live_server.url + path, timeout=HTTP_TIMEOUT, **kwargs)
        assert r.status_code == expected, f"{method} {path}: {r.status_code} {r.text}"
        return r.json()

    return call


def test_it_closes_the_loop_for_a_detractor(
    short_sla, people, live_server, smtp_server, celery_processes, http, staff_api
):
    started = time.monotonic()
    site = live_server.url
    call = staff_api

    # Beat took the sweeps from CELERY_BEAT_SCHEDULE into the database, at the interval.
    for name in ("invitations-sweep", "followups-sweep"):
        wait_for(
            lambda name=name: PeriodicTask.objects.filter(
                name=name,
                enabled=True,
                interval__every=SWEEP_INTERVAL,
                interval__period="seconds",
            ).exists(),
            timeout=30,
            what=f"beat to schedule {name} every {SWEEP_INTERVAL} s",
        )

    # CX staff import customers, build an NPS survey and send a campaign, over the API.
    customers = [
        {"email": "ana@example.com", "name": "Ana Lima", "locale": "en"},
        {"email": "bo@example.com", "name": "Bo Park", "locale": "en"},
        {"email": "cy@example.com", "name": "Cy Diaz", "locale": "en"},
    ]
    for i, customer in enumerate(customers):
        call(
            "POST",
            "/api/customers/",
            201,
            json={**customer, "external_id": f"crm-{i}", "properties": {"plan": "pro"}},
        )
    survey = call(
        "POST", "/api/surveys/", 201, json={"name": "Relationship NPS", "kind": "nps"}
    )
    campaign = call(
        "POST", "/api/campaigns/", 201, json={"name": "Q3 NPS", "survey": survey["id"]}
    )
    sent = call("POST", f"/api/campaigns/{campaign['id']}/send/", 202)
    assert sent["invitations"] == 3

    # The worker emails every customer their personal link, with one-click scores.
    invitations = smtp_server.wait_for_messages(3, timeout=60)
    assert sorted(a for m in invitations for a in m.rcpt_tos) == sorted(
        c["email"] for c in customers
    )
    ana = smtp_server.to("ana@example.com")
    assert len(ana) == 1
    message = ana[0].message
    html = message.get_body(preferencelist=("html",)).get_content()
    text = message.get_body(preferencelist=("plain",)).get_content()
    links = re.findall(
        r'href="(' + re.escape(site) + r'/s/([^/"]+)/\?score=(\d+))"', html
    )
    assert [int(score) for _, _, score in links] == list(range(11))
    token = links[0][1]
    assert {t for _, t, _ in links} == {token}
    assert f"{site}/s/{token}/" in text

    # Ana clicks 3: the page opens with 3 chosen; she adds a comment and sends it.
    customer = http()
    page = customer.get(links[3][0], timeout=HTTP_TIMEOUT)
    assert page.status_code == 200
    checked = [
        i["value"]
        for i in inputs_of(page.text)
        if i.get("name") == "score" and "checked" in i
    ]
    assert checked == ["3"]
    csrf = next(
        i["value"]
        for i in inputs_of(page.text)
        if i.get("name") == "csrfmiddlewaretoken"
    )
    assert "csrftoken" in customer.cookies
    posted = timezone.now()
    thanks = customer.post(
        f"{site}/s/{token}/",
        data={
            "csrfmiddlewaretoken": csrf,
            "score": "3",
            "comment": "Support never called back.",
        },
        timeout=HTTP_TIMEOUT,
    )
    answered = timezone.now()
    assert thanks.status_code == 200, thanks.text
    assert thanks.url == f"{site}/s/{token}/thanks/"
    assert "Thank you for your feedback!" in thanks.text
    assert thanks.history and thanks.history[0].status_code == 302

    # A follow-up is open for the detractor, owned by the agent, due under the SLA.
    followups = call("GET", "/api/followups/", 200)["results"]
    assert len(followups) == 1
    followup = followups[0]
    assert followup["owner"] == people["agent"].pk
    assert followup["status"] == "new"
    sla = timedelta(seconds=SLA_SECONDS)
    assert posted + sla <= parse_datetime(followup["due_at"]) <= answered + sla

    agent_email, manager_email = people["agent"].email, people["manager"].email
    # The agent is told; once overdue, the managers are told, once, however many sweeps.
    assigned = smtp_server.wait_for_messages(1, to=agent_email, timeout=30)
    assert f"Follow-up #{followup['id']}" in assigned[0].message["Subject"]
    escalated = smtp_server.wait_for_messages(
        1, to=manager_email, timeout=SLA_SECONDS + 30
    )
    assert f"follow-up #{followup['id']}" in escalated[0].message["Subject"]
    time.sleep(4 * SWEEP_INTERVAL + 1)
    assert len(smtp_server.to(manager_email)) == 1
    assert len(smtp_server.to(agent_email)) == 1
    assert len(smtp_server.messages) == 5
    late = call("GET", f"/api/followups/{followup['id']}/", 200)
    assert (late["status"], late["is_overdue"]) == ("new", True)
    assert late["escalated_at"] is not None

    # CX staff resolve it over the API; the campaign's NPS counts the one detractor.
    resolved = call(
        "PATCH",
        f"/api/followups/{followup['id']}/",
        200,
        json={
            "status": "resolved",
            "resolution": "Called Ana, refunded the late order.",
            "root_cause": "service",
        },
    )
    assert resolved["status"] == "resolved"
    nps = call("GET", f"/api/metrics/nps/?campaign={campaign['id']}", 200)
    assert nps["nps"] == -100.0
    assert nps["detractors"] == 1
    assert nps["responses"] == 1
    assert nps["promoters"] == 0 and nps["passives"] == 0

    assert time.monotonic() - started < 120


def test_it_closes_the_loop_for_an_unhappy_csat_customer(
    short_sla, people, live_server, smtp_server, celery_processes, http, staff_api
):
    """A post-purchase CSAT campaign from its template: one tap sends the score from
    the email, the reason follows, and a CSAT of 2 opens a follow-up; a 5 does not."""
    site = live_server.url
    call = staff_api

    for email, locale in [("dee@example.com", "en"), ("eun@example.com", "ko")]:
        call("POST", "/api/customers/", 201, json={"email": email, "locale": locale})
    survey = call(
        "POST",
        "/api/surveys/from-template/",
        201,
        json={"template": "post_purchase_csat"},
    )
    assert survey["kind"] == "csat"
    campaign = call(
        "POST",
        "/api/campaigns/",
        201,
        json={"name": "After checkout", "survey": survey["id"]},
    )
    assert call("POST", f"/api/campaigns/{campaign['id']}/send/", 202) == {
        "invitations": 2
    }

    smtp_server.wait_for_messages(2, timeout=60)

    def score_links(to: str) -> dict[int, str]:
        message = smtp_server.to(to)[0].message
        html = message.get_body(preferencelist=("html",)).get_content()
        found = re.findall(
            r'href="(' + re.escape(site) + r'/s/[^/"]+/\?score=(\d+))"', html
        )
        return {int(score): url for url, score in found}

    def answer_with_one_tap(url: str) -> tuple:
        customer = http()
        page = customer.get(url, timeout=HTTP_TIMEOUT)
        assert page.status_code == 200
        fields = {i.get("name"): i for i in inputs_of(page.text)}
        assert [i["value"] for i in inputs_of(page.text) if "checked" in i] == [
            url.rsplit("=", 1)[1]
        ]
        # The page sends what the browser would: the checked score, the CSRF token.
        sent = customer.post(
            url.split("?")[0],
            data={
                "csrfmiddlewaretoken": fields["csrfmiddlewaretoken"]["value"],
                "score": url.rsplit("=", 1)[1],
            },
            timeout=HTTP_TIMEOUT,
        )
        return customer, sent

    dee = score_links("dee@example.com")
    assert sorted(dee) == [1, 2, 3, 4, 5]
    eun = score_links("eun@example.com")
    assert sorted(eun) == [1, 2, 3, 4, 5]

    customer, more = answer_with_one_tap(dee[2])
    assert more.status_code == 200 and more.url.endswith("/more/")
    # The score is saved by that one tap, before anything else is asked.
    responses = call("GET", f"/api/responses/?campaign={campaign['id']}", 200)
    assert [(r["score"], r["bucket"]) for r in responses["results"]] == [
        (2, "dissatisfied")
    ]
    csrf = next(
        i["value"]
        for i in inputs_of(more.text)
        if i.get("name") == "csrfmiddlewaretoken"
    )
    thanks = customer.post(
        more.url,
        data={"csrfmiddlewaretoken": csrf, "comment": "The box arrived crushed."},
        timeout=HTTP_TIMEOUT,
    )
    assert thanks.url.endswith("/thanks/")

    _customer, happy = answer_with_one_tap(eun[5])
    assert "감사합니다" in happy.text

    followups = call("GET", "/api/followups/", 200)["results"]
    assert len(followups) == 1
    assert (followups[0]["score"], followups[0]["comment"]) == (
        2,
        "The box arrived crushed.",
    )
    assert followups[0]["owner"] == people["agent"].pk
    smtp_server.wait_for_messages(1, to=people["agent"].email, timeout=30)

    csat = call("GET", f"/api/metrics/csat/?campaign={campaign['id']}", 200)
    assert (csat["csat"], csat["satisfied"], csat["dissatisfied"]) == (50.0, 1, 1)
