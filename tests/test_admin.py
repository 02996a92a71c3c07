import pytest

from cxm.customers.models import Customer
from journeys.models import Journey
from surveys.models import Campaign, CampaignStatus, Response, Survey
from surveys.services import campaign_send, response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    UserFactory,
    agent,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_it_gives_a_survey_added_in_the_admin_its_nps_questions(admin_client):
    r = admin_client.post(
        "/admin/surveys/survey/add/",
        {
            "name": "Post-purchase NPS",
            "kind": "nps",
            "questions-TOTAL_FORMS": "0",
            "questions-INITIAL_FORMS": "0",
        },
    )
    assert r.status_code == 302
    survey = Survey.objects.get(name="Post-purchase NPS")
    assert [q.kind for q in survey.questions.all()] == ["score", "comment"]


def test_it_sends_campaigns_from_the_admin_action(
    admin_client, django_capture_on_commit_callbacks
):
    CustomerFactory.create_batch(3)
    campaign = CampaignFactory()
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            "/admin/surveys/campaign/",
            {"action": "send", "_selected_action": [campaign.pk]},
            follow=True,
        )
    assert "3 invitations queued" in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT  # eager Celery delivered all three
    assert campaign.invitations.filter(status="sent").count() == 3

    r = admin_client.post(
        "/admin/surveys/campaign/",
        {"action": "send", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "already sent" in r.content.decode()
    assert campaign.invitations.count() == 3


def test_it_shows_the_nps_on_the_campaign(admin_client):
    campaign = CampaignFactory()
    CustomerFactory.create_batch(4)
    campaign_send(campaign=campaign)
    for invitation, score in zip(
        campaign.invitations.all(), [10, 9, 7, 3], strict=True
    ):
        response_record(invitation=invitation, score=score)
    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    assert "25.0 ± 81.3 from 4 responses: 2 promoters, 1 passives, 1 detractors" in (
        html.decode()
    )


def test_it_lists_campaigns_in_constant_queries(
    admin_client, django_assert_num_queries
):
    CampaignFactory()
    with django_assert_num_queries(6) as few:
        admin_client.get("/admin/surveys/campaign/")
    CampaignFactory.create_batch(5)
    with django_assert_num_queries(len(few.captured_queries)):
        r = admin_client.get("/admin/surveys/campaign/")
    assert r.content.decode().count('class="field-nps"') == Campaign.objects.count()


def test_it_finds_customers_by_email_in_the_admin(admin_client):
    CustomerFactory(email="mina@example.com")
    CustomerFactory(email="joon@example.com")
    html = admin_client.get("/admin/customers/customer/?q=mina").content.decode()
    assert "mina@example.com" in html and "joon@example.com" not in html


def test_it_filters_customers_by_contact_state_and_locale(admin_client):
    from cxm.customers.services import customer_mark_bounced, customer_unsubscribe

    reachable = CustomerFactory(locale="ko")
    gone = CustomerFactory(locale="en")
    customer_unsubscribe(customer=gone)
    bounced = CustomerFactory(locale="ko")
    customer_mark_bounced(customer_id=bounced.pk)

    def listed(query):
        r = admin_client.get(f"/admin/customers/customer/?{query}")
        return set(r.context["cl"].result_list)

    assert listed("contactable=yes") == {reachable}
    assert listed("contactable=unsubscribed") == {gone}
    assert listed("contactable=bounced") == {bounced}
    assert listed("locale__exact=ko") == {reachable, bounced}


def test_it_builds_a_journey_with_ordered_stages_in_the_admin(admin_client):
    r = admin_client.post(
        "/admin/journeys/journey/add/",
        {
            "name": "Online shopper",
            "description": "",
            "stages-TOTAL_FORMS": "2",
            "stages-INITIAL_FORMS": "0",
            "stages-0-name": "Purchase",
            "stages-0-position": "3",
            "stages-1-name": "Awareness",
            "stages-1-position": "1",
        },
    )
    assert r.status_code == 302
    journey = Journey.objects.get()
    assert [s.name for s in journey.stages.all()] == ["Awareness", "Purchase"]


def test_it_assigns_through_the_service_when_the_owner_changes_in_the_admin(
    admin_client, mailoutbox, django_capture_on_commit_callbacks
):
    from cxm.followups.models import EventKind
    from tests.factories import agent

    first, second = agent(), agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    assert followup.owner == first
    with django_capture_on_commit_callbacks(execute=True):
        r = admin_client.post(
            f"/admin/followups/followup/{followup.pk}/change/",
            {
                "response": followup.response_id,
                "owner": second.pk,
                "priority": "high",
                "events-TOTAL_FORMS": "0",
                "events-INITIAL_FORMS": "0",
            },
        )
    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.owner == second
    assert (
        followup.events.filter(kind=EventKind.ASSIGNED).last().text == second.username
    )
    assert [m.to for m in mailoutbox] == [[second.email]]


def test_it_freezes_the_audience_of_a_sent_campaign(admin_client):
    campaign = CampaignFactory()
    campaign_send(campaign=campaign)
    html = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/change/").content
    assert 'name="audience"' not in html.decode()


def test_it_passes_djangos_system_checks():
    """manage.py check runs before migrate and runserver: an error stops make run."""
    from django.core.management import call_command

    call_command("check", fail_level="WARNING")


def test_it_lists_follow_ups_with_their_score(admin_client):
    followup = response_record(invitation=InvitationFactory(), score=2).followup
    r = admin_client.get("/admin/followups/followup/")
    assert r.status_code == 200
    row = r.context["cl"].result_list
    assert list(row) == [followup]
    assert '<td class="field-score">2</td>' in r.content.decode()


@pytest.mark.parametrize(
    "audience, message",
    [
        ('{"spend": Infinity}', "Numbers must be finite."),
        ('{"plan": "pro\\u0000"}', "Text must not contain NUL"),
    ],
)
def test_it_refuses_an_audience_the_database_cannot_store(
    admin_client, audience, message
):
    survey = Survey.objects.create(name="NPS", kind="nps")
    r = admin_client.post(
        "/admin/surveys/campaign/add/",
        {"name": "Spring", "survey": survey.pk, "audience": audience},
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["audience"])
    assert not Campaign.objects.exists()


def followup_change(admin_client, followup, **fields):
    data = {
        "owner": followup.owner_id or "",
        "priority": followup.priority,
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        **fields,
    }
    return admin_client.post(f"/admin/followups/followup/{followup.pk}/change/", data)


def test_it_opens_follow_ups_only_from_responses(admin_client):
    assert admin_client.get("/admin/followups/followup/add/").status_code == 403
    html = admin_client.get("/admin/followups/followup/").content.decode()
    assert "/admin/followups/followup/add/" not in html


@pytest.mark.parametrize(
    "make_owner, message",
    [
        (lambda: agent(is_active=False), "Select a valid choice"),
        (lambda: UserFactory(), "Select a valid choice"),
    ],
    ids=["inactive agent", "not CX staff"],
)
def test_it_offers_only_active_cx_staff_as_owners(admin_client, make_owner, message):
    first = agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    owner = make_owner()

    r = followup_change(admin_client, followup, owner=owner.pk)

    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["owner"])
    followup.refresh_from_db()
    assert followup.owner == first


def test_it_records_a_priority_change_on_the_timeline(admin_client):
    from cxm.followups.models import EventKind

    agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    assert followup.priority == "normal"

    r = followup_change(admin_client, followup, priority="high")

    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.priority == "high"
    event = followup.events.get(kind=EventKind.PRIORITY_CHANGED)
    assert event.description() == "High" and event.actor.is_superuser


def test_it_keeps_a_resolved_follow_up_as_it_was_resolved(admin_client):
    from cxm.followups.services import followup_resolve

    first, second = agent(), agent()
    followup = response_record(invitation=InvitationFactory(), score=1).followup
    followup_resolve(
        followup=followup, actor=first, resolution="Refunded", root_cause="price"
    )
    events = followup.events.count()

    r = followup_change(admin_client, followup, owner=second.pk, priority="low")

    assert r.status_code == 302
    followup.refresh_from_db()
    assert (followup.owner, followup.priority) == (first, "high")
    assert followup.events.count() == events


def test_it_shows_responses_and_invitations_but_never_writes_them(admin_client):
    agent()
    response = response_record(invitation=InvitationFactory(), score=9)
    invitation = response.invitation

    for url in ["/admin/surveys/response/add/", "/admin/surveys/invitation/add/"]:
        assert admin_client.get(url).status_code == 403
    r = admin_client.get(f"/admin/surveys/response/{response.pk}/change/")
    assert r.status_code == 200 and b'name="score"' not in r.content
    r = admin_client.post(
        f"/admin/surveys/response/{response.pk}/change/",
        {"invitation": invitation.pk, "score": "2", "comment": "changed"},
    )
    assert r.status_code == 403
    response.refresh_from_db()
    assert response.score == 9
    assert not hasattr(response, "followup")
    r = admin_client.post(
        f"/admin/surveys/invitation/{invitation.pk}/change/", {"status": "queued"}
    )
    assert r.status_code == 403


def test_it_lets_staff_reword_a_survey_question_but_not_remove_it(admin_client):
    survey = Survey.objects.create(name="NPS", kind="nps")
    from surveys.services import survey_add_standard_questions

    survey_add_standard_questions(survey=survey)
    score, comment = survey.questions.all()
    r = admin_client.post(
        f"/admin/surveys/survey/{survey.pk}/change/",
        {
            "name": "NPS",
            "kind": "nps",
            "questions-TOTAL_FORMS": "2",
            "questions-INITIAL_FORMS": "2",
            "questions-0-id": score.pk,
            "questions-0-survey": survey.pk,
            "questions-0-text": "Would you recommend {company} to a friend?",
            "questions-0-DELETE": "on",
            "questions-1-id": comment.pk,
            "questions-1-survey": survey.pk,
            "questions-1-text": "",
            "questions-1-kind": "score",
        },
    )
    assert r.status_code == 302
    assert [(q.kind, q.text) for q in survey.questions.all()] == [
        ("score", "Would you recommend {company} to a friend?"),
        ("comment", ""),
    ]


@pytest.mark.parametrize("properties", ["", "   ", "null"], ids=repr)
def test_it_stores_no_customer_properties_for_an_empty_or_null_box(
    admin_client, properties
):
    data = {"email": "kim@example.com", "name": "Kim", "locale": "ko"}
    r = admin_client.post(
        "/admin/customers/customer/add/", {**data, "properties": properties}
    )
    assert r.status_code == 302
    customer = Customer.objects.get()
    assert customer.properties == {}

    Customer.objects.filter(pk=customer.pk).update(properties={"plan": "pro"})
    r = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {**data, "properties": properties},
    )
    assert r.status_code == 302
    customer.refresh_from_db()
    assert customer.properties == {}


@pytest.mark.parametrize("audience", ["", "   ", "null"], ids=repr)
def test_it_sends_a_campaign_to_all_customers_when_the_audience_box_is_empty(
    admin_client, audience
):
    survey = Survey.objects.create(name="NPS", kind="nps")
    data = {"name": "Spring", "survey": survey.pk}
    r = admin_client.post(
        "/admin/surveys/campaign/add/", {**data, "audience": audience}
    )
    assert r.status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.audience == {}

    Campaign.objects.filter(pk=campaign.pk).update(audience={"plan": "pro"})
    r = admin_client.post(
        f"/admin/surveys/campaign/{campaign.pk}/change/", {**data, "audience": audience}
    )
    assert r.status_code == 302
    campaign.refresh_from_db()
    assert campaign.audience == {}


# JSON that Python's parser cannot read, or that it reads but jsonb cannot store.
UNREADABLE_JSON = [
    ("[" * 100_000 + "]" * 100_000, "Nest values at most 32 levels deep."),
    ('{"a": ' + "9" * 5000 + "}", "Numbers must have at most 4300 digits."),
    ('{"a": "\\ud800"}', "Text must not contain NUL or unpaired surrogate"),
]
UNREADABLE_JSON_IDS = ["nested 100,000 deep", "5,000 digits", "lone surrogate"]
UNSTORABLE_JSON = [
    ('{"score": NaN}', "Numbers must be finite."),
    ('{"plan": "pro\\u0000"}', "Text must not contain NUL"),
    ('["pro"]', "Expected an object"),
]
UNSTORABLE_JSON_IDS = ["NaN", "NUL", "not an object"]


@pytest.mark.parametrize(
    "properties, message",
    UNREADABLE_JSON + UNSTORABLE_JSON,
    ids=UNREADABLE_JSON_IDS + UNSTORABLE_JSON_IDS,
)
def test_it_redraws_the_customer_form_for_properties_it_cannot_store(
    admin_client, properties, message
):
    r = admin_client.post(
        "/admin/customers/customer/add/",
        {
            "email": "kim@example.com",
            "name": "Kim",
            "locale": "ko",
            "properties": properties,
        },
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["properties"])
    assert 'name="properties"' in r.content.decode()
    assert not Customer.objects.exists()


@pytest.mark.parametrize("audience, message", UNREADABLE_JSON, ids=UNREADABLE_JSON_IDS)
def test_it_redraws_the_campaign_form_for_an_audience_it_cannot_read(
    admin_client, audience, message
):
    survey = Survey.objects.create(name="NPS", kind="nps")
    campaign = CampaignFactory(survey=survey, audience={"plan": "pro"})
    r = admin_client.post(
        f"/admin/surveys/campaign/{campaign.pk}/change/",
        {"name": "Spring", "survey": survey.pk, "audience": audience},
    )
    assert r.status_code == 200
    assert message in str(r.context["adminform"].form.errors["audience"])
    assert 'name="audience"' in r.content.decode()
    campaign.refresh_from_db()
    assert campaign.name != "Spring" and campaign.audience == {"plan": "pro"}


def test_it_keeps_a_departed_owner_when_only_the_priority_changes(admin_client):
    owner = agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    owner.groups.clear()  # left the CX team; the follow-up is still theirs

    r = followup_change(admin_client, followup, priority="high")

    assert r.status_code == 302
    followup.refresh_from_db()
    assert (followup.owner, followup.priority) == (owner, "high")
    assert not followup.events.filter(kind="assigned", text="").exists()


def test_it_changes_nothing_on_a_follow_up_resolved_meanwhile(admin_client):
    """The agent resolved it while the admin page was open."""
    from cxm.followups.services import followup_resolve

    owner = agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    form_page = admin_client.get(f"/admin/followups/followup/{followup.pk}/change/")
    assert b'name="priority"' in form_page.content
    followup_resolve(
        followup=followup, actor=owner, resolution="Called", root_cause="other"
    )

    events = followup.events.count()

    followup_change(admin_client, followup, priority="high")

    followup.refresh_from_db()
    assert followup.priority == "normal"
    assert followup.events.count() == events


def test_it_does_not_delete_responses_or_invitations_in_the_admin(admin_client):
    agent()
    response = response_record(invitation=InvitationFactory(), score=2)
    for url in [
        f"/admin/surveys/response/{response.pk}/delete/",
        f"/admin/surveys/invitation/{response.invitation_id}/delete/",
    ]:
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Response.objects.filter(pk=response.pk).exists()
    assert response.followup.pk


def test_its_follow_up_form_refuses_changes_once_the_follow_up_is_resolved():
    """The narrow race: resolved after the admin built its form, before it saves."""
    from cxm.followups.admin import FollowUpForm
    from cxm.followups.services import followup_resolve

    owner = agent()
    followup = response_record(invitation=InvitationFactory(), score=5).followup
    form = FollowUpForm(data={"owner": owner.pk, "priority": "high"}, instance=followup)
    followup_resolve(
        followup=followup, actor=owner, resolution="Called", root_cause="other"
    )

    assert not form.is_valid()
    assert form.non_field_errors() == ["This follow-up was resolved meanwhile."]
