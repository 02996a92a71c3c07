"""The CSV export of responses, read back as a spreadsheet would."""

import csv
import io

import pytest
from django.db import connection

from surveys.exports import BOM, _copy, _written, export_columns
from surveys.models import Response
from surveys.services import response_record, survey_create
from tests.api.helpers import answer
from tests.factories import CampaignFactory, CustomerFactory, InvitationFactory, agent

pytestmark = pytest.mark.django_db

TRICKY = 'Slow, then "fine"\nsecond line; 배송이 너무 늦었어요'


def read(response) -> tuple[str, list[dict]]:
    """Returns (the first character, the rows as dicts) of a streamed CSV."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    return text[:1], rows


@pytest.fixture
def survey():
    return survey_create(
        name="Onboarding",
        kind="nps",
        questions=[
            {"type": "short_text", "text_en": "Your role?"},
            {
                "type": "multiple_choice",
                "text_en": "What mattered?",
                "choices": [
                    {"value": "fast", "en": "Fast"},
                    {"value": "price", "en": "Price"},
                ],
            },
        ],
    )


@pytest.fixture
def campaign(survey):
    return CampaignFactory(survey=survey, name="Spring")


def record(campaign, score, comment="", role="", mattered=(), **customer):
    survey = campaign.survey
    role_q = survey.questions.get(text_en="Your role?")
    mattered_q = survey.questions.get(text_en="What mattered?")
    return response_record(
        invitation=InvitationFactory(
            campaign=campaign, customer=CustomerFactory(**customer)
        ),
        answers={
            "score": score,
            "comment": comment,
            role_q.field_name: role,
            mattered_q.field_name: list(mattered),
        },
    )


def test_it_exports_a_column_per_question_and_property(api, campaign):
    record(
        campaign,
        3,
        TRICKY,
        role="CTO",
        mattered=["fast", "price"],
        email="jane@example.com",
        properties={"plan": "pro", "region": "서울"},
    )
    record(campaign, 10, "Great", email="kim@example.com", properties={"plan": "free"})
    answer(5, "Other campaign")

    first, rows = read(api.get(f"/api/responses/export.csv?campaign={campaign.pk}"))

    assert first != BOM
    assert [r["customer_email"] for r in rows] == [
        "kim@example.com",
        "jane@example.com",
    ]
    jane = rows[1]
    assert jane["comment"] == TRICKY
    assert (jane["score"], jane["bucket"], jane["kind"]) == ("3", "detractor", "nps")
    assert jane["campaign"] == "Spring"
    assert jane["Your role?"] == "CTO"
    assert '"fast"' in jane["What mattered?"] and '"price"' in jane["What mattered?"]
    assert (jane["customer.plan"], jane["customer.region"]) == ("pro", "서울")
    assert rows[0]["customer.region"] == "" and rows[0]["Your role?"] == ""


def test_it_puts_an_excel_bom_first_when_asked(api, campaign):
    record(campaign, 9, "배송이 빨랐어요")

    first, rows = read(
        api.get(f"/api/responses/export.csv?campaign={campaign.pk}&bom=1")
    )

    assert first == BOM
    assert rows[0]["comment"] == "배송이 빨랐어요"


@pytest.mark.parametrize("formula", ["=1+2", "+1", "-2+3", "@SUM(A1)"])
def test_it_keeps_a_formula_a_text(api, campaign, formula):
    record(campaign, 2, formula, role=formula, name=formula)

    _, rows = read(api.get(f"/api/responses/export.csv?campaign={campaign.pk}"))

    for column in ["comment", "Your role?", "customer_name"]:
        assert rows[0][column] == "'" + formula
    assert rows[0]["score"] == "2"


def test_it_exports_only_the_headline_of_several_surveys(api):
    answer(9, "Nice")
    answer(2, "Bad", campaign__survey__kind="csat")

    _, rows = read(api.get("/api/responses/export.csv?bucket=promoter"))

    assert [(r["score"], r["comment"]) for r in rows] == [("9", "Nice")]
    assert "Your role?" not in rows[0]


def test_it_answers_bad_filters_as_the_list_does(api):
    assert api.get("/api/responses/export.csv?campaign=abc").status_code == 400
    assert api.get("/api/responses/export.csv?campaign=999999").status_code == 404
    assert api.get("/api/responses/export.csv?bom=maybe").status_code == 400
    assert api.get("/api/responses/export.csv?since=2024-02-30").status_code == 400


def test_it_exports_from_the_responses_page_with_its_filters(client, campaign):
    client.force_login(agent())
    record(campaign, 9, "Fast shipping", email="a@example.com")
    record(campaign, 2, "Slow", email="b@example.com")

    page = client.get(f"/responses/?campaign={campaign.pk}&bucket=detractor")
    assert "/responses/export.csv?" in page.content.decode()
    first, rows = read(
        client.get(
            f"/responses/export.csv?campaign={campaign.pk}&bucket=detractor&bom=1"
        )
    )

    assert first == BOM
    assert [r["customer_email"] for r in rows] == ["b@example.com"]
    assert client.get("/responses/export.csv?campaign=x").status_code == 400


def test_it_exports_from_the_admin(admin_client, campaign):
    one = record(campaign, 9, "Fast", role="CEO")
    record(campaign, 1, "Slow")

    r = admin_client.post(
        "/admin/surveys/response/",
        {"action": "export_csv", "_selected_action": [one.pk]},
    )

    first, rows = read(r)
    assert first == BOM
    assert [(r["comment"], r["Your role?"]) for r in rows] == [("Fast", "CEO")]


def test_it_writes_the_same_rows_without_copy(campaign):
    # The embedded SQLite has no COPY: Python writes the same CSV from a cursor.
    record(campaign, 3, TRICKY, role="=cmd", properties={"plan": "pro"})
    record(campaign, 9, "fine")
    _, rows = export_columns(responses=Response.objects.all(), survey=campaign.survey)

    copied = b"".join(_copy(connection, rows)).decode()
    written = b"".join(_written(rows)).decode()

    def cells(text):
        # The answered_at column (second) is formatted by each side its own way.
        return [row[:1] + row[2:] for row in csv.reader(io.StringIO(text))]

    assert cells(copied) == cells(written)
    assert len(cells(written)) == 2
