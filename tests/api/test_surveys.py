"""Surveys, campaigns, invitations and responses over the API."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cxm.customers.services import segment_create
from surveys.models import (
    Campaign,
    CampaignStatus,
    Invitation,
    InvitationStatus,
    Survey,
)
from surveys.services import campaign_send, invitations_deliver, response_record
from tests.api.helpers import answer, page_ids
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    SurveyFactory,
)

pytestmark = pytest.mark.django_db


# Surveys


def test_it_creates_a_survey_with_its_two_standard_questions(api):
    r = api.post("/api/surveys/", {"name": "Onboarding", "kind": "nps"}, format="json")

    assert r.status_code == 201, r.content
    survey = Survey.objects.get()
    assert survey.name == "Onboarding"
    questions = r.json()["questions"]
    assert [(q["position"], q["type"], q["role"]) for q in questions] == [
        (1, "score", "headline"),
        (2, "long_text", "reason"),
    ]
    assert questions[0]["scale"] == [0, 10]
    assert "recommend" in questions[0]["display_text"]


def test_it_refuses_an_unknown_survey_kind(api):
    r = api.post("/api/surveys/", {"name": "X", "kind": "vibes"}, format="json")

    assert r.status_code == 400
    assert list(r.json()) == ["kind"]
    assert not Survey.objects.exists()


@pytest.mark.parametrize("kind, scale", [("csat", [1, 5]), ("ces", [1, 7])])
def test_it_creates_csat_and_ces_surveys_with_their_scales(api, kind, scale):
    r = api.post("/api/surveys/", {"name": kind, "kind": kind}, format="json")

    assert r.status_code == 201, r.content
    assert r.json()["kind"] == kind
    assert r.json()["questions"][0]["scale"] == scale


def test_it_creates_a_custom_survey_with_its_questions(api):
    r = api.post(
        "/api/surveys/",
        {
            "name": "Onboarding",
            "kind": "custom",
            "questions": [
                {"type": "score", "text_en": "Setup?", "scale_low": 1, "scale_high": 4},
                {
                    "type": "single_choice",
                    "text_en": "Plan?",
                    "text_ko": "요금제?",
                    "choices": [
                        {"value": "free", "en": "Free", "ko": "무료"},
                        {"value": "pro", "en": "Pro"},
                    ],
                    "required": True,
                },
            ],
        },
        format="json",
    )

    assert r.status_code == 201, r.content
    score, choice = r.json()["questions"]
    assert (score["type"], score["scale"], score["role"]) == ("score", [1, 4], "")
    assert choice["choices"][0] == {"value": "free", "en": "Free", "ko": "무료"}
    assert choice["required"] is True


def test_it_names_the_bad_question_of_a_new_survey(api):
    r = api.post(
        "/api/surveys/",
        {
            "name": "X",
            "kind": "custom",
            "questions": [
                {"type": "long_text", "text_en": "Fine"},
                {"type": "single_choice", "text_en": "Q", "choices": []},
            ],
        },
        format="json",
    )

    assert r.status_code == 400
    assert r.json() == {"questions": [{}, {"choices": ["Offer at least two choices."]}]}
    assert not Survey.objects.exists()


def test_it_refuses_a_custom_survey_without_questions(api):
    r = api.post("/api/surveys/", {"name": "X", "kind": "custom"}, format="json")

    assert r.status_code == 400
    assert r.json() == {"questions": ["Ask at least one question."]}


def test_it_rewords_and_adds_questions_with_patch_but_keeps_answered_ones(api):
    survey = SurveyFactory()
    headline, reason = survey.questions.all()
    answer(9, campaign__survey=survey, comment="good")

    r = api.patch(
        f"/api/surveys/{survey.pk}/",
        {
            "name": "Renamed",
            "questions": [
                {"id": headline.pk, "text_en": "Recommend {company}?"},
                {"id": reason.pk},
                {"type": "short_text", "text_en": "Your role?"},
            ],
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["name"] == "Renamed"
    assert [q["display_text"] for q in r.json()["questions"]][0] == "Recommend cxm?"
    assert len(r.json()["questions"]) == 3

    r = api.patch(
        f"/api/surveys/{survey.pk}/",
        {"questions": [{"id": headline.pk}]},
        format="json",
    )
    assert r.status_code == 409  # the survey's answers refuse it
    assert "has answers and cannot be removed" in r.json()["questions"][0]
    assert survey.questions.count() == 3


def test_it_keeps_a_surveys_kind(api):
    survey = SurveyFactory()

    r = api.patch(f"/api/surveys/{survey.pk}/", {"kind": "csat"}, format="json")

    assert r.status_code == 409
    assert list(r.json()) == ["kind"]
    assert (
        api.patch(
            f"/api/surveys/{survey.pk}/", {"kind": "nps"}, format="json"
        ).status_code
        == 200
    )


@pytest.mark.parametrize(
    "questions",
    [
        [{"id": 999999}],  # not a question of this survey
        [{"type": "short_text", "text_en": "Role?"}],  # the score question left out
    ],
)
def test_it_answers_409_to_questions_its_current_ones_refuse(api, questions):
    survey = SurveyFactory()

    r = api.patch(f"/api/surveys/{survey.pk}/", {"questions": questions}, format="json")

    assert r.status_code == 409, r.content
    assert list(r.json()) == ["questions"]


def test_it_answers_400_to_a_new_question_that_breaks_the_rules_on_its_own(api):
    survey = SurveyFactory()
    headline, reason = survey.questions.all()

    r = api.patch(
        f"/api/surveys/{survey.pk}/",
        {
            "questions": [
                {"id": headline.pk},
                {"id": reason.pk},
                {"type": "score", "text_en": "Setup?", "scale_low": 5, "scale_high": 2},
            ]
        },
        format="json",
    )

    assert r.status_code == 400, r.content
    assert r.json()["questions"][2] == {
        "scale_high": ["A scale runs from 0 to 10 at most, low before high."]
    }


def test_it_gives_a_new_scored_survey_at_most_48_questions_besides_its_own(api):
    question = {"type": "short_text", "text_en": "Why?"}

    r = api.post(
        "/api/surveys/",
        {"name": "Long", "kind": "nps", "questions": [question] * 49},
        format="json",
    )

    assert r.status_code == 400
    assert list(r.json()) == ["questions"]
    r = api.post(
        "/api/surveys/",
        {"name": "Long", "kind": "nps", "questions": [question] * 48},
        format="json",
    )
    assert r.status_code == 201
    assert len(r.json()["questions"]) == 50


def test_it_lists_and_starts_from_templates_and_copies(api):
    templates = api.get("/api/surveys/templates/").json()
    assert [t["template"] for t in templates] == [
        "relationship_nps",
        "post_purchase_csat",
        "post_support_ces",
    ]

    r = api.post(
        "/api/surveys/from-template/",
        {"template": "post_support_ces"},
        format="json",
    )
    assert r.status_code == 201, r.content
    assert (r.json()["name"], r.json()["kind"]) == ("Post-support CES", "ces")

    r = api.post(f"/api/surveys/{r.json()['id']}/copy/", {}, format="json")
    assert r.status_code == 201
    assert r.json()["name"] == "Copy of Post-support CES"
    assert len(r.json()["questions"]) == 2

    r = api.post("/api/surveys/from-template/", {"template": "x"}, format="json")
    assert r.status_code == 400
    assert list(r.json()) == ["template"]


def test_it_lets_agents_read_surveys_but_not_write_them(agent_api):
    assert agent_api.get("/api/surveys/").status_code == 200
    r = agent_api.post("/api/surveys/", {"name": "X", "kind": "nps"}, format="json")
    assert r.status_code == 403


def test_it_retrieves_a_survey_with_its_questions(api):
    survey = SurveyFactory()

    r = api.get(f"/api/surveys/{survey.pk}/")

    assert r.status_code == 200
    assert len(r.json()["questions"]) == 2


def test_it_lists_surveys_in_a_constant_number_of_queries(
    api, django_assert_num_queries
):
    SurveyFactory.create_batch(2)
    with django_assert_num_queries(4) as few:  # token, count, surveys, questions
        assert len(page_ids(api.get("/api/surveys/"))) == 2

    SurveyFactory.create_batch(8)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(page_ids(api.get("/api/surveys/"))) == 10


# Campaigns


def test_it_creates_a_campaign_for_all_customers_and_sends_it(
    api, django_capture_on_commit_callbacks
):
    customers = CustomerFactory.create_batch(3, properties={"plan": "pro"})
    CustomerFactory(unsubscribed_at=timezone.now())
    survey = SurveyFactory()

    r = api.post("/api/campaigns/", {"name": "Q3", "survey": survey.pk}, format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["segment"] is None
    assert body["status"] == "draft"
    assert (body["invited"], body["responses"], body["nps"]) == (0, 0, None)

    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/api/campaigns/{body['id']}/send/")

    assert r.status_code == 202, r.content
    assert r.json() == {"invitations": 3}
    campaign = Campaign.objects.get()
    assert campaign.sent_at is not None
    invited = set(campaign.invitations.values_list("customer_id", flat=True))
    assert invited == {c.pk for c in customers}
    # Celery is eager in tests: the emails went out on commit.
    assert len(mail.outbox) == 3
    assert campaign.invitations.filter(status=InvitationStatus.SENT).count() == 3


def pro_segment():
    return segment_create(
        name="Pro",
        conditions=[
            {"type": "property", "name": "plan", "op": "equals", "value": "pro"}
        ],
    )


def test_it_sends_to_the_segment_only(api):
    pro = CustomerFactory(properties={"plan": "pro"})
    CustomerFactory(properties={"plan": "free"})

    r = api.post(
        "/api/campaigns/",
        {"name": "Pro", "survey": SurveyFactory().pk, "segment": pro_segment().pk},
        format="json",
    )
    assert r.status_code == 201, r.content
    r = api.post(f"/api/campaigns/{r.json()['id']}/send/")

    assert r.json() == {"invitations": 1}
    assert Invitation.objects.get().customer == pro


def test_it_answers_409_with_the_services_message_on_a_second_send(api):
    campaign = CampaignFactory()
    CustomerFactory()
    assert api.post(f"/api/campaigns/{campaign.pk}/send/").status_code == 202

    r = api.post(f"/api/campaigns/{campaign.pk}/send/")

    assert r.status_code == 409
    assert list(r.json()) == ["detail"]
    assert r.json()["detail"].startswith("This campaign was already sent on ")
    assert Invitation.objects.count() == 1


def test_it_answers_409_on_sending_an_expired_campaign(api):
    campaign = CampaignFactory(expires_at=timezone.now() - timedelta(days=1))

    r = api.post(f"/api/campaigns/{campaign.pk}/send/")

    assert r.status_code == 409
    assert "expired" in r.json()["detail"]


@pytest.mark.parametrize(
    "segment", ["pro", 1.5, {"id": 1}], ids=["text", "fraction", "object"]
)
def test_it_wants_a_segment_id(api, segment):
    r = api.post(
        "/api/campaigns/",
        {"name": "X", "survey": SurveyFactory().pk, "segment": segment},
        format="json",
    )

    assert r.status_code == 400, r.content
    assert list(r.json()) == ["segment"]
    assert not Campaign.objects.exists()


def test_it_answers_404_to_an_unknown_segment(api):
    r = api.post(
        "/api/campaigns/",
        {"name": "X", "survey": SurveyFactory().pk, "segment": 999999},
        format="json",
    )

    assert r.status_code == 404
    assert r.json() == {"detail": "There is no segment 999999."}


def test_it_answers_404_to_an_unknown_survey(api):
    r = api.post("/api/campaigns/", {"name": "X", "survey": 999999}, format="json")

    assert r.status_code == 404
    assert r.json() == {"detail": "There is no survey 999999."}


def test_it_changes_a_draft_campaign_but_not_its_status(api):
    campaign = CampaignFactory(name="Old")
    segment = pro_segment()

    r = api.patch(
        f"/api/campaigns/{campaign.pk}/",
        {"name": "New", "status": "sent", "segment": segment.pk},
        format="json",
    )

    assert r.status_code == 200, r.content
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("New", CampaignStatus.DRAFT)
    assert campaign.segment == segment
    assert r.json()["status"] == "draft"


def test_it_answers_409_to_changing_a_sent_campaign(api):
    campaign = CampaignFactory(name="Old")
    campaign_send(campaign=campaign)

    r = api.patch(f"/api/campaigns/{campaign.pk}/", {"name": "New"}, format="json")

    assert r.status_code == 409
    assert list(r.json()) == ["status"]
    campaign.refresh_from_db()
    assert campaign.name == "Old"


def test_it_shows_a_csat_campaigns_score(api):
    campaign = CampaignFactory(survey__kind="csat")
    for score in (5, 4, 1, 3):
        answer(score, campaign=campaign)

    body = api.get(f"/api/campaigns/{campaign.pk}/").json()

    assert (body["kind"], body["score"], body["nps"]) == ("csat", 50.0, None)
    assert body["responses"] == 4


def test_it_shows_a_campaigns_counts_and_nps(api):
    campaign = CampaignFactory()
    for score in (10, 9, 7, 3):
        answer(score, campaign=campaign)
    CustomerFactory()  # not invited

    body = api.get(f"/api/campaigns/{campaign.pk}/").json()

    assert (body["invited"], body["responses"]) == (4, 4)
    assert body["nps"] == 25.0  # 50 % promoters − 25 % detractors
    assert body["margin_of_error"] is not None


def test_it_lists_campaigns_in_a_constant_number_of_queries(
    api, django_assert_num_queries
):
    def campaign_with_answers():
        campaign = CampaignFactory()
        answer(9, campaign=campaign)
        answer(2, campaign=campaign)

    for _ in range(2):
        campaign_with_answers()
    with django_assert_num_queries(3) as few:  # token, count, campaigns
        assert len(page_ids(api.get("/api/campaigns/"))) == 2

    for _ in range(8):
        campaign_with_answers()
    with django_assert_num_queries(len(few.captured_queries)):
        rows = api.get("/api/campaigns/").json()["results"]
    assert len(rows) == 10
    assert {(row["invited"], row["responses"], row["nps"]) for row in rows} == {
        (2, 2, 0.0)
    }


# Invitations and responses


def test_it_filters_invitations_by_campaign(api):
    campaign, other = CampaignFactory(), CampaignFactory()
    CustomerFactory.create_batch(2)
    campaign_send(campaign=campaign)
    campaign_send(campaign=other)
    mine = set(campaign.invitations.values_list("pk", flat=True))

    ids = page_ids(api.get(f"/api/invitations/?campaign={campaign.pk}"))

    assert set(ids) == mine and len(ids) == 2
    assert len(page_ids(api.get("/api/invitations/"))) == 4


def test_it_shows_an_invitations_personal_link(api):
    campaign = CampaignFactory()
    CustomerFactory(email="jane@example.com")
    campaign_send(campaign=campaign)
    invitation = Invitation.objects.get()

    body = api.get(f"/api/invitations/{invitation.pk}/").json()

    assert body["customer_email"] == "jane@example.com"
    assert body["token"] == invitation.token
    assert body["link"] == f"http://testserver/s/{invitation.token}/"


def test_it_filters_responses_by_campaign(api):
    campaign, other = CampaignFactory(), CampaignFactory()
    mine = [answer(9, campaign=campaign).pk, answer(3, campaign=campaign).pk]
    answer(8, campaign=other)

    ids = page_ids(api.get(f"/api/responses/?campaign={campaign.pk}"))

    assert sorted(ids) == sorted(mine)
    assert len(page_ids(api.get("/api/responses/"))) == 3


def test_it_shows_a_response_with_its_customer_bucket_and_answers(api):
    response = answer(3, comment="Too slow")
    headline, reason = response.survey.questions.all()

    body = api.get(f"/api/responses/{response.pk}/").json()

    assert body["score"] == 3
    assert body["comment"] == "Too slow"
    assert (body["kind"], body["bucket"]) == ("nps", "detractor")
    assert body["campaign"] == response.campaign_id
    assert body["survey"] == response.survey_id
    assert body["customer_email"] == response.customer.email
    assert body["answers"] == [
        {"question": headline.pk, "value": 3},
        {"question": reason.pk, "value": "Too slow"},
    ]


def test_it_gives_the_bucket_of_each_kind(api):
    csat = answer(4, campaign__survey__kind="csat")
    ces = answer(2, campaign__survey__kind="ces")

    assert api.get(f"/api/responses/{csat.pk}/").json()["bucket"] == "satisfied"
    assert api.get(f"/api/responses/{ces.pk}/").json()["bucket"] == "hard"


def test_it_filters_responses_by_survey_and_period(api):
    old = answer(9)
    new = answer(3, campaign__survey=old.survey)
    from surveys.models import Response

    Response.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    since = (timezone.now() - timedelta(days=1)).isoformat()

    assert page_ids(api.get(f"/api/responses/?survey={old.survey_id}")) == [
        new.pk,
        old.pk,
    ]
    assert page_ids(api.get("/api/responses/", {"since": since})) == [new.pk]
    assert page_ids(api.get("/api/responses/", {"until": since})) == [old.pk]
    assert api.get("/api/responses/?since=yesterday").status_code == 400


@pytest.mark.parametrize("resource", ["invitations", "responses"])
@pytest.mark.parametrize("value", ["abc", "1.5", "1%25"])
def test_it_answers_400_to_a_campaign_filter_that_is_no_id(api, resource, value):
    r = api.get(f"/api/{resource}/?campaign={value}")

    assert r.status_code == 400
    assert list(r.json()) == ["campaign"]
    assert r.json()["campaign"][0].startswith("There is no campaign ")


@pytest.mark.parametrize("resource", ["invitations", "responses"])
@pytest.mark.parametrize("value", ["999999", "-1", "99999999999999999999999"])
def test_it_answers_404_to_a_campaign_filter_naming_nothing(api, resource, value):
    r = api.get(f"/api/{resource}/?campaign={value}")

    assert r.status_code == 404
    assert r.json() == {"detail": f"There is no campaign {value}."}


@pytest.mark.parametrize("resource", ["invitations", "responses"])
def test_it_answers_404_to_a_customer_filter_naming_nothing(api, resource):
    r = api.get(f"/api/{resource}/?customer=999999")

    assert r.status_code == 404
    assert r.json() == {"detail": "There is no customer 999999."}


@pytest.mark.parametrize("resource", ["invitations", "responses"])
def test_it_lists_invitations_and_responses_in_a_constant_number_of_queries(
    api, django_assert_num_queries, resource
):
    for score in (9, 3):
        answer(score)
    # token, count (invitations; responses page by a cursor), rows, answers
    expected = {"invitations": 3, "responses": 3}[resource]
    with django_assert_num_queries(expected) as few:
        assert len(page_ids(api.get(f"/api/{resource}/"))) == 2

    for score in (10, 9, 8, 7, 6, 5, 4, 3):
        answer(score)
    with django_assert_num_queries(len(few.captured_queries)):
        assert len(page_ids(api.get(f"/api/{resource}/"))) == 10


def test_it_refuses_a_survey_id_that_is_not_a_whole_number(api):
    survey = Survey.objects.create(name="NPS", kind="nps")

    r = api.post(
        "/api/campaigns/", {"name": "Spring", "survey": survey.pk + 0.9}, format="json"
    )

    assert r.status_code == 400, r.content
    assert list(r.json()) == ["survey"]
    assert not Campaign.objects.exists()


def test_it_keeps_personal_links_from_agents(agent_api):
    """A link answers and unsubscribes for the customer: staff accounts only."""
    invitation = InvitationFactory()

    listed = agent_api.get("/api/invitations/").json()["results"]
    one = agent_api.get(f"/api/invitations/{invitation.pk}/").json()

    assert [i["id"] for i in listed] == [invitation.pk]
    for body in [listed[0], one]:
        assert "token" not in body and "link" not in body
        assert invitation.token not in str(body)
        assert body["customer_email"] == invitation.customer.email


def test_it_reports_a_bad_question_at_the_index_the_client_sent_it(api):
    r = api.post(
        "/api/surveys/",
        {
            "name": "idx",
            "kind": "nps",
            "questions": [
                {"type": "short_text", "text_en": "ok"},
                {"type": "short_text"},
            ],
        },
        format="json",
    )

    assert r.status_code == 400
    assert r.json() == {
        "questions": [{}, {"text_en": ["Word the question in English."]}]
    }


def test_it_gives_a_campaigns_stats_with_counts_per_state_and_response_rate(
    api, django_assert_num_queries
):
    customers = CustomerFactory.create_batch(3)
    campaign = CampaignFactory(survey__kind="nps", reminders=1)
    campaign_send(campaign=campaign)
    invitations = list(campaign.invitations.order_by("pk"))
    invitations_deliver(invitation_ids=[i.pk for i in invitations])
    for invitation in invitations:
        invitation.refresh_from_db()
    response_record(invitation=invitations[0], score=10)
    invitations[1].status = "bounced"
    invitations[1].save()

    with django_assert_num_queries(4):  # the user, the campaign, counts, metric
        r = api.get(f"/api/campaigns/{campaign.pk}/stats/")

    assert r.status_code == 200
    body = r.json()
    assert body["invited"] == 3
    assert body["states"]["answered"] == 1
    assert body["states"]["bounced"] == 1
    assert body["states"]["sent"] == 1
    assert body["skipped"]["recently_contacted"] == 0
    assert body["delivered"] == 2
    assert body["responses"] == 1
    assert body["response_rate"] == 50.0
    assert body["metric"]["nps"] == 100.0
    assert len(customers) == 3


def test_it_answers_404_for_the_stats_of_no_campaign(api):
    assert api.get("/api/campaigns/999999/stats/").status_code == 404


def test_it_pages_responses_by_cursor_without_counting(api, monkeypatch):
    from surveys import selectors

    monkeypatch.setattr(selectors, "RESPONSES_PAGE", 2)
    campaign = CampaignFactory()
    made = [answer(score, campaign=campaign).pk for score in (1, 2, 3)]

    first = api.get(f"/api/responses/?campaign={campaign.pk}").json()
    second = api.get(first["next"]).json()

    assert "count" not in first
    assert [r["id"] for r in first["results"]] == made[:0:-1]
    assert [r["id"] for r in second["results"]] == made[:1]
    assert second["next"] is None
    assert api.get("/api/responses/?cursor=nope!").status_code == 404


def test_it_filters_responses_by_day_bucket_and_several_campaigns(api):
    a, b = CampaignFactory(), CampaignFactory()
    one, two = answer(9, campaign=a), answer(3, campaign=b)
    answer(5)
    today = timezone.now().date().isoformat()

    ids = page_ids(api.get(f"/api/responses/?campaign={a.pk}&campaign={b.pk}"))
    assert sorted(ids) == sorted([one.pk, two.pk])
    assert page_ids(api.get(f"/api/responses/?campaign={a.pk}&until={today}")) == [
        one.pk
    ]
    assert page_ids(api.get(f"/api/responses/?campaign={b.pk}&since={today}")) == [
        two.pk
    ]
    assert page_ids(api.get("/api/responses/?bucket=promoter")) == [one.pk]
    assert api.get("/api/responses/?until=2024-13-01").status_code == 400
    assert api.get(f"/api/responses/?campaign={a.pk}&campaign=0").status_code == 404
