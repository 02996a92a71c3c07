from datetime import timedelta

import pytest
from django.utils import timezone

from cxm.followups.models import EventKind, FollowUp, FollowUpStatus, RootCause
from cxm.outbox.models import OutboxEmail
from surveys.services import response_record
from tests.factories import InvitationFactory, UserFactory, agent, manager

pytestmark = pytest.mark.django_db


def detractor_followup(score=3, comment="rude staff"):
    response = response_record(
        invitation=InvitationFactory(), score=score, comment=comment
    )
    return response.followup


@pytest.fixture
def owner():
    return agent()


@pytest.fixture
def followup(owner):
    return detractor_followup()


@pytest.fixture
def agent_client(client, owner):
    client.force_login(owner)
    return client


CX_PAGES = ["/followups/", "/dashboard/"]
STAFF_PAGES = [*CX_PAGES, "/outbox/"]


def actions(followup) -> list[tuple[str, dict]]:
    return [
        (f"/followups/{followup.pk}/take/", {}),
        (f"/followups/{followup.pk}/note/", {"text": "Called."}),
        (
            f"/followups/{followup.pk}/resolve/",
            {"resolution": "Refunded", "root_cause": "other"},
        ),
    ]


def assert_untouched(followup):
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW
    assert followup.owner is not None and followup.owner.groups.exists()
    assert not followup.events.filter(kind=EventKind.NOTE).exists()


def test_it_sends_anonymous_visitors_to_the_login_page(client, followup):
    for url in [*STAFF_PAGES, f"/followups/{followup.pk}/"]:
        r = client.get(url)
        assert r.status_code == 302
        assert r["Location"].startswith("/accounts/login/?next=")
    for url, data in actions(followup):
        r = client.post(url, data)
        assert r.status_code == 302 and "/accounts/login/" in r["Location"], url
    assert_untouched(followup)


def test_it_shows_outsiders_nothing(client, followup):
    client.force_login(UserFactory())
    for url in [*STAFF_PAGES, f"/followups/{followup.pk}/"]:
        assert client.get(url).status_code == 403
    for url, data in actions(followup):
        assert client.post(url, data).status_code == 403, url
    assert_untouched(followup)


def test_it_lets_managers_and_staff_in(client, followup):
    for user in [manager(), UserFactory(is_staff=True)]:
        client.force_login(user)
        for url in [*CX_PAGES, f"/followups/{followup.pk}/"]:
            assert client.get(url).status_code == 200, url


def test_it_shows_the_outbox_to_staff_accounts_only(client, agent_client):
    """Every email sent holds a customer's personal link: not for agents."""
    assert agent_client.get("/outbox/").status_code == 403
    client.force_login(manager())
    assert client.get("/outbox/").status_code == 403
    client.force_login(UserFactory(is_staff=True))
    assert client.get("/outbox/").status_code == 200


def test_it_lists_the_queue_sorted_by_due_time(agent_client):
    later = detractor_followup()
    sooner = detractor_followup()
    FollowUp.objects.filter(pk=sooner.pk).update(due_at=timezone.now())
    html = agent_client.get("/followups/").content.decode()
    assert html.index(f"/followups/{sooner.pk}/") < html.index(
        f"/followups/{later.pk}/"
    )


def test_it_filters_by_status_owner_and_overdue(agent_client, owner):
    mine = detractor_followup()
    overdue = detractor_followup()
    FollowUp.objects.filter(pk=overdue.pk).update(
        due_at=timezone.now() - timedelta(hours=1), owner=None
    )
    resolved = detractor_followup()
    FollowUp.objects.filter(pk=resolved.pk).update(
        status="resolved",
        resolved_at=timezone.now(),
        root_cause=RootCause.objects.get(code="other"),
    )

    def listed(query):
        html = agent_client.get("/followups/?" + query).content.decode()
        return {
            f.pk for f in (mine, overdue, resolved) if f"/followups/{f.pk}/" in html
        }

    assert listed("status=resolved") == {resolved.pk}
    assert listed("") == {mine.pk, overdue.pk}  # unresolved, the default
    assert listed("status=any") == {mine.pk, overdue.pk, resolved.pk}
    assert listed("overdue=true") == {overdue.pk}
    assert listed("overdue=false&status=any") == {mine.pk, resolved.pk}
    assert listed(f"owner={owner.pk}&status=any") == {mine.pk, resolved.pk}
    assert listed("owner=none") == {overdue.pk}


def test_it_says_which_filter_is_wrong(agent_client, followup):
    r = agent_client.get("/followups/?status=bogus&owner=abc&overdue=maybe")

    assert r.status_code == 400
    assert set(r.context["form"].errors) == {"status", "owner", "overdue"}
    html = r.content.decode()
    assert html.count('class="errorlist"') == 3
    assert "Select a valid choice" in html
    assert f"/followups/{followup.pk}/" not in html


def test_it_tells_the_second_agent_that_the_follow_up_was_resolved_meanwhile(
    agent_client, followup, owner
):
    from cxm.followups.services import followup_resolve

    followup_resolve(
        followup=followup, actor=owner, resolution="Refunded", root_cause="price"
    )

    r = agent_client.post(
        f"/followups/{followup.pk}/resolve/",
        {"resolution": "Called back", "root_cause": "service"},
        follow=True,
    )

    assert r.redirect_chain == [(f"/followups/{followup.pk}/", 302)]
    assert "This follow-up is already resolved." in r.content.decode()
    followup.refresh_from_db()
    assert (followup.resolution, followup.root_cause.code) == ("Refunded", "price")


def test_it_lists_in_constant_queries(agent_client, django_assert_num_queries):
    detractor_followup()
    # Who the user is (session, user, roles), the choices the filters offer, the
    # count and the page of follow-ups: none of them grows with the follow-ups.
    with django_assert_num_queries(19) as few:
        agent_client.get("/followups/")
    for _ in range(5):
        detractor_followup()
    with django_assert_num_queries(len(few.captured_queries)):
        agent_client.get("/followups/")


def test_it_shows_the_customer_answer_and_timeline(agent_client, followup, owner):
    html = agent_client.get(f"/followups/{followup.pk}/").content.decode()
    assert followup.customer.email in html
    assert "rude staff" in html
    assert 'id="score">3<' in html
    assert owner.username in html
    assert "Opened" in html and "Assigned" in html


def test_it_shows_the_kind_and_the_other_answers_of_a_csat_followup(agent_client):
    from surveys.services import survey_create

    survey = survey_create(
        name="After purchase",
        kind="csat",
        questions=[
            {
                "type": "multiple_choice",
                "text_en": "What went wrong?",
                "choices": [
                    {"value": "late", "en": "Late delivery"},
                    {"value": "broken", "en": "Broken item"},
                ],
            }
        ],
    )
    extra = survey.questions.get(role="")
    response = response_record(
        invitation=InvitationFactory(campaign__survey=survey),
        answers={"score": 1, "comment": "Box crushed", extra.field_name: ["broken"]},
    )

    html = agent_client.get(response.followup.get_absolute_url()).content.decode()

    assert 'id="score">1<' in html
    assert 'id="kind">CSAT (1–5)<' in html
    assert "<dt>What went wrong?</dt><dd>Broken item</dd>" in html


def test_it_shows_everything_that_happened_on_the_timeline_in_order(
    agent_client, followup, owner, mailoutbox
):
    from cxm.followups.services import (
        followup_add_note,
        followup_resolve,
        followups_sweep,
    )

    manager()
    followup_add_note(followup=followup, actor=owner, text="Called, no answer")
    FollowUp.objects.filter(pk=followup.pk).update(
        due_at=timezone.now() - timedelta(minutes=1)
    )
    followups_sweep()
    followup_resolve(
        followup=followup,
        actor=owner,
        resolution="Apologised and refunded",
        root_cause="service",
    )

    html = agent_client.get(f"/followups/{followup.pk}/").content.decode()
    timeline = html[html.index('id="timeline"') :]
    entries = [
        "<strong>Opened</strong>",
        "<strong>Assigned</strong>",
        "<strong>Note</strong>",
        "Called, no answer",
        "<strong>Escalated</strong>",
        "<strong>Resolved</strong>",
        "Apologised and refunded",
    ]
    positions = [timeline.index(entry) for entry in entries]
    assert positions == sorted(positions)
    assert timeline.count(f"· {owner.username}") >= 2  # the note and the resolve


def test_it_lets_an_agent_take_a_followup(client, followup):
    other = agent()
    client.force_login(other)
    r = client.post(f"/followups/{followup.pk}/take/")
    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.owner == other
    assert followup.events.filter(kind=EventKind.ASSIGNED, actor=other).exists()


def test_it_adds_a_note(agent_client, followup, owner):
    agent_client.post(f"/followups/{followup.pk}/note/", {"text": "Called, no answer"})
    assert followup.events.filter(kind=EventKind.NOTE, actor=owner).get().text == (
        "Called, no answer"
    )
    r = agent_client.post(f"/followups/{followup.pk}/note/", {"text": ""})
    assert r.status_code == 400


def test_it_resolves_recording_who_when_and_why(agent_client, followup, owner):
    r = agent_client.post(
        f"/followups/{followup.pk}/resolve/",
        {"root_cause": "service", "resolution": "Apologised, refunded shipping"},
    )
    assert r.status_code == 302
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.RESOLVED
    assert followup.resolved_by == owner
    assert followup.resolved_at is not None
    assert followup.root_cause.code == "service"


def test_it_refuses_to_resolve_without_a_root_cause_or_resolution(
    agent_client, followup
):
    r = agent_client.post(f"/followups/{followup.pk}/resolve/", {"resolution": ""})
    assert r.status_code == 400
    html = r.content.decode()
    assert html.count('class="errorlist') >= 2
    followup.refresh_from_db()
    assert followup.status == FollowUpStatus.NEW


def test_it_lists_and_shows_outbox_emails_with_clickable_links(client, settings):
    client.force_login(UserFactory(is_staff=True))
    settings.EMAIL_BACKEND = "cxm.outbox.backends.EmailBackend"
    from surveys.services import invitations_deliver

    invitation = InvitationFactory()
    invitations_deliver(invitation_ids=[invitation.pk])
    email = OutboxEmail.objects.get()
    assert client.get("/outbox/").content.decode().count(email.subject) == 1
    html = client.get(f"/outbox/{email.pk}/").content.decode()
    assert f'<a href="{invitation.link}"' in html  # the text part, urlized
    # The HTML part in a frame of its own (a srcdoc frame takes the page's CSP).
    assert f'src="/outbox/{email.pk}/html/"' in html
    assert "?score=10" in client.get(f"/outbox/{email.pk}/html/").content.decode()


def test_it_follows_the_browsers_language_on_staff_pages(agent_client, followup):
    korean = agent_client.get("/followups/", HTTP_ACCEPT_LANGUAGE="ko-KR,ko;q=0.9")
    assert '<html lang="ko">' in korean.content.decode()
    assert "후속 조치" in korean.content.decode()
    english = agent_client.get("/followups/", HTTP_ACCEPT_LANGUAGE="en-US")
    assert "Follow-ups" in english.content.decode()
    french = agent_client.get("/followups/", HTTP_ACCEPT_LANGUAGE="fr")
    assert '<html lang="en">' in french.content.decode()


def test_it_shows_the_timeline_in_the_readers_language(agent_client, owner):
    """A Korean customer's answer reads in English to an English-speaking agent."""
    from django.utils import translation

    from cxm.followups.services import followup_assign

    with translation.override("ko"):  # as in the customer's request
        followup = detractor_followup(score=2, comment="배송이 늦었어요")
        followup_assign(followup=followup, owner=None, actor=owner)

    english = agent_client.get(f"/followups/{followup.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    html = english.content.decode()
    assert "Score 2." in html and "Unassigned" in html
    korean = agent_client.get(f"/followups/{followup.pk}/", HTTP_ACCEPT_LANGUAGE="ko")
    html = korean.content.decode()
    assert "Score 2." not in html and "Unassigned" not in html
    with translation.override("ko"):
        assert translation.gettext("Score %(score)d.") % {"score": 2} in html


def test_it_treats_a_session_cookie_with_a_nul_byte_as_no_session(client):
    r = client.get("/followups/", HTTP_COOKIE="sessionid=abcdefgh\x00ijkl")
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")
