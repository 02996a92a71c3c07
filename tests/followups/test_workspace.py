"""
The staff workspace: where each user lands, their preferences (language, time
zone, start page), the friendly 403 and 404, the current page marked.
"""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from cxm.followups.models import StaffProfile, StartPage, Team
from cxm.followups.services import staff_profile_save, team_save, user_language
from cxm.outbox.models import OutboxEmail
from tests.factories import UserFactory, agent, manager

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


def log_in(client, user, **headers):
    return client.post(
        "/accounts/login/",
        {"username": user.username, "password": PASSWORD},
        REMOTE_ADDR="203.0.113.7",
        **headers,
    )


# Landing


def test_it_lands_an_agent_on_their_own_queue(client):
    mina = agent(username="mina")
    client.force_login(mina)

    r = client.get("/")

    assert r.status_code == 302 and r["Location"] == f"/followups/?owner={mina.pk}"


def test_it_lands_a_manager_on_the_dashboard(client):
    client.force_login(manager())

    assert client.get("/")["Location"] == "/dashboard/"


def test_it_lands_a_team_manager_who_is_an_agent_on_the_dashboard(client):
    boss = agent()
    team_save(team=Team(name="Seoul", manager=boss), members=[])
    client.force_login(boss)

    assert client.get("/")["Location"] == "/dashboard/"


def test_it_lands_staff_on_the_start_page_they_chose(client):
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    assert client.get("/")["Location"] == "/followups/"

    staff_profile_save(user=staff, start_page=StartPage.OUTBOX)

    assert client.get("/")["Location"] == "/outbox/"

    staff_profile_save(user=staff, start_page=StartPage.ADMIN)

    assert client.get("/")["Location"] == "/admin/"


def test_it_ignores_a_start_page_the_user_may_no_longer_open(client):
    mina = agent()
    StaffProfile.objects.create(user=mina, start_page=StartPage.OUTBOX)
    client.force_login(mina)

    assert client.get("/")["Location"] == f"/followups/?owner={mina.pk}"

    StaffProfile.objects.filter(user=mina).update(start_page=StartPage.ADMIN)

    assert client.get("/")["Location"] == f"/followups/?owner={mina.pk}"


def test_it_lands_an_agent_on_the_responses_or_the_journeys_if_chosen(client):
    mina = agent()
    client.force_login(mina)
    for page, url in (
        (StartPage.RESPONSES, "/responses/"),
        (StartPage.JOURNEYS, "/journeys/"),
    ):
        staff_profile_save(user=mina, start_page=page)
        assert client.get("/")["Location"] == url


def test_it_sends_a_login_to_the_start_page(client):
    mina = agent(username="mina")

    r = log_in(client, mina)

    assert r.status_code == 302 and r["Location"] == "/"
    assert client.get("/")["Location"] == f"/followups/?owner={mina.pk}"


def test_it_asks_a_visitor_to_log_in_at_the_landing(client):
    r = client.get("/")
    assert r.status_code == 302 and r["Location"].startswith("/accounts/login/")


# Preferences


def test_it_saves_preferences_and_speaks_the_chosen_language(client):
    boss = manager()
    client.force_login(boss)

    r = client.post(
        "/preferences/",
        {"language": "ko", "time_zone": "Asia/Seoul", "start_page": "reports"},
        follow=True,
    )

    assert r.status_code == 200
    profile = StaffProfile.objects.get(user=boss)
    assert (profile.language, profile.time_zone, profile.start_page) == (
        "ko",
        "Asia/Seoul",
        "reports",
    )
    html = r.content.decode()
    assert '<html lang="ko">' in html and "환경 설정" in html
    assert client.get("/")["Location"] == "/followups/reports/"


@pytest.mark.parametrize(
    "field, value",
    [
        ("time_zone", "Mars/Olympus"),
        ("language", "fr"),
        ("start_page", "outbox"),  # an agent has no outbox
        ("start_page", "admin"),  # nor the admin
        ("start_page", "x" * 50),
    ],
)
def test_it_says_which_preference_is_wrong_and_saves_nothing(client, field, value):
    client.force_login(agent())
    data = {"language": "", "time_zone": "", "start_page": "", field: value}

    r = client.post("/preferences/", data)

    assert r.status_code == 400
    assert r.context["form"].errors[field]
    assert not StaffProfile.objects.exists()


def test_it_refuses_an_unknown_time_zone_in_the_service():
    with pytest.raises(ValidationError) as error:
        staff_profile_save(user=agent(), time_zone="Europe/Atlantis")
    assert "time_zone" in error.value.message_dict


def test_it_keeps_the_email_language_the_emails_use():
    mina = agent()
    staff_profile_save(user=mina, language="ko")
    assert user_language(mina) == "ko"


def sent_at(when):
    email = OutboxEmail.objects.create(to="a@example.com", subject="Hi", body_text="")
    # created_at is auto_now_add: set afterwards.
    OutboxEmail.objects.filter(pk=email.pk).update(created_at=when)


def test_it_shows_times_in_the_users_time_zone(client, settings):
    settings.TIME_ZONE = "UTC"
    staff = UserFactory(is_staff=True)
    StaffProfile.objects.create(user=staff, time_zone="Asia/Seoul")
    sent_at(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    log_in(client, staff)

    html = client.get("/outbox/").content.decode()

    assert "2026-03-02 08:30:00" in html  # 23:30 UTC is 08:30 the next day in Seoul


def test_it_shows_times_in_the_site_zone_without_a_preference(client, settings):
    settings.TIME_ZONE = "UTC"
    staff = UserFactory(is_staff=True)
    sent_at(datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    log_in(client, staff)

    assert "2026-03-01 23:30:00" in client.get("/outbox/").content.decode()


def test_it_speaks_the_users_language_whatever_the_browser_asks(client):
    mina = agent()
    StaffProfile.objects.create(user=mina, language="ko")
    log_in(client, mina)

    r = client.get("/followups/", HTTP_ACCEPT_LANGUAGE="en")

    assert '<html lang="ko">' in r.content.decode()
    assert r["Content-Language"] == "ko"


def test_it_takes_no_query_of_its_own_for_the_preferences(
    client, django_assert_num_queries
):
    mina = agent()
    StaffProfile.objects.create(user=mina, language="ko", time_zone="Asia/Seoul")
    log_in(client, mina)
    without = Client()
    other = agent()
    log_in(without, other)

    # The same page costs the same queries with and without preferences.
    with CaptureQueriesContext(connection) as plain:
        without.get("/preferences/")
    with django_assert_num_queries(len(plain.captured_queries)):
        client.get("/preferences/")


# 403 and 404


@pytest.mark.parametrize(
    "language, title",
    [("en", "No access to this page"), ("ko", "이 페이지에 접근할 수 없습니다")],
)
def test_it_shows_a_friendly_403_in_the_staff_layout(client, language, title):
    client.force_login(agent())

    r = client.get("/outbox/", HTTP_ACCEPT_LANGUAGE=language)

    assert r.status_code == 403
    html = r.content.decode()
    assert f'<html lang="{language}">' in html and title in html
    assert 'class="staff"' in html and 'href="/followups/"' in html  # navigation


@pytest.mark.parametrize(
    "language, title", [("en", "Page not found"), ("ko", "페이지를 찾을 수 없습니다")]
)
def test_it_shows_a_friendly_404_in_the_staff_layout(client, language, title):
    client.force_login(manager())

    r = client.get("/followups/999999/", HTTP_ACCEPT_LANGUAGE=language)

    assert r.status_code == 404
    html = r.content.decode()
    assert f'<html lang="{language}">' in html and title in html
    assert 'class="staff"' in html and 'href="/"' in html


@pytest.mark.parametrize(
    "language, title", [("en", "Page not found"), ("ko", "페이지를 찾을 수 없습니다")]
)
def test_it_shows_a_customer_the_404_in_the_public_layout(client, language, title):
    r = client.get("/no/such/page/", HTTP_ACCEPT_LANGUAGE=language)

    assert r.status_code == 404
    html = r.content.decode()
    assert f'<html lang="{language}">' in html and title in html
    assert 'class="public"' in html and "Log out" not in html


def test_it_shows_a_logged_in_outsider_the_403_without_the_staff_navigation(client):
    client.force_login(UserFactory())

    r = client.get("/followups/", HTTP_ACCEPT_LANGUAGE="en")

    assert r.status_code == 403
    html = r.content.decode()
    assert 'class="public"' in html and "No access to this page" in html


# Navigation


@pytest.mark.parametrize(
    "url, current",
    [
        ("/followups/", "/followups/"),
        ("/dashboard/", "/dashboard/"),
        ("/outbox/", "/outbox/"),
        ("/preferences/", "/preferences/"),
        ("/followups/reports/", "/followups/reports/"),
        ("/responses/", "/responses/"),
        ("/journeys/", "/journeys/"),
    ],
)
def test_it_marks_the_current_page_in_the_navigation(client, url, current):
    client.force_login(UserFactory(is_staff=True))

    html = client.get(url).content.decode()

    assert html.count('aria-current="page"') == 1
    assert f'href="{current}" aria-current="page"' in html


def test_it_draws_the_preferences_and_the_landing_in_fixed_queries(
    client, django_assert_num_queries
):
    mina = agent()
    StaffProfile.objects.create(user=mina, language="ko", time_zone="Asia/Seoul")
    log_in(client, mina)

    # Session, user, the CX-staff check, the profile, the reports check of the
    # start-page choices and of the navigation.
    with django_assert_num_queries(6):
        client.get("/preferences/")
    # Session, user, the CX-staff check, the profile, the role's checks.
    with django_assert_num_queries(6):
        client.get("/")
