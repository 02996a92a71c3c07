"""
The admin as CX staff meet it: the index grouped by what they work on, the
customer list with its property columns and filters, the responses list; then
a list and a form of every model staff work on; at 360 px and on a desktop, in
English and Korean.
"""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.utils import timezone

from cxm.admin_site import is_system_model
from cxm.customers.models import Channel
from cxm.customers.services import interaction_record
from cxm.followups.models import RootCause, Team
from cxm.followups.services import team_save
from journeys.models import Touchpoint
from journeys.services import journey_create, persona_create, touchpoint_save
from surveys.services import response_record
from tests.factories import (
    CustomerFactory,
    InvitationFactory,
    UserFactory,
    property_segment,
)

from .pages import (
    axe_violations,
    broken_words,
    hidden_overflow,
    screenshot,
    session_for,
    sideways_scroll,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def test_it_shows_staff_the_cx_admin(browser, live_server, locale, page):
    user = UserFactory(username="cx-admin", is_staff=True, is_superuser=True)
    user.set_password(PASSWORD)
    user.save()
    for n, (plan, region) in enumerate([("pro", "Seoul"), ("free", "Berlin")]):
        customer = CustomerFactory(
            email=f"c{n}@example.com", properties={"plan": plan, "region": region}
        )
        response_record(
            invitation=InvitationFactory(customer=customer),
            score=3 + 6 * n,
            comment="배송이 너무 늦었어요" if n == 0 else "Great",
        )
    tag = f"{locale}-{page.size}"
    page.goto(f"{live_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "cx-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    sections = page.locator("#content-main caption").all_inner_texts()
    first = ["고객", "설문조사와 캠페인", "후속 조치", "고객 여정"]
    if locale == "en":
        first = ["Customers", "Surveys and campaigns", "Follow-ups", "Journeys"]
    # Drawn in capitals by the admin's style sheet.
    assert [s.strip().casefold() for s in sections[:4]] == [s.casefold() for s in first]
    for name in ("index", "customers", "customers-filtered", "responses"):
        if name == "customers":
            page.goto(f"{live_server.url}/admin/customers/customer/")
            assert "Seoul" in page.inner_text("#result_list")
        elif name == "customers-filtered":
            page.goto(
                f"{live_server.url}/admin/customers/customer/?property_plan=%22pro%22"
            )
            assert page.locator("#result_list tbody tr").count() == 1
        elif name == "responses":
            page.goto(f"{live_server.url}/admin/surveys/response/?bucket=detractor")
            assert "배송이" in page.inner_text("#result_list")
            assert page.locator("#result_list tbody tr").count() == 1
        screenshot(page, f"admin-{name}-{tag}")
        assert axe_violations(page) == [], name
        assert sideways_scroll(page) <= 0, name
        assert hidden_overflow(page) == [], name


def staff_data() -> dict[str, str]:
    """One of each thing staff keep in the admin, in English and Korean words:
    returns the path of the form to open for each model (a change form, or the
    add form where the admin adds but never changes)."""
    customer = CustomerFactory(
        email="seo-yeon.park.long-address@example.co.kr",
        name="박서연",
        locale="ko",
        properties={"plan": "pro", "region": "Seoul"},
        complained_at=timezone.now() - timedelta(days=2),
    )
    interaction_record(customer=customer, kind="purchase", channel=Channel.WEB)
    segment = property_segment("plan", "pro")
    invitation = InvitationFactory(
        customer=customer, campaign__name="2026년 고객 만족도 설문조사 캠페인"
    )
    campaign, survey = invitation.campaign, invitation.campaign.survey
    followup = response_record(
        invitation=invitation, score=3, comment="배송이 너무 늦었어요"
    ).followup
    InvitationFactory(customer=CustomerFactory(), campaign=campaign)
    team = team_save(team=Team(name="고객 지원팀"))
    persona = persona_create(name="온라인 쇼핑 고객", segment=segment)
    journey = journey_create(name="온라인 구매 여정", persona=persona)
    stage = journey.stages.order_by("position").first()
    touchpoint = touchpoint_save(
        touchpoint=Touchpoint(stage=stage, name="주문 확인 이메일", channel="email")
    )
    return {
        "customers/customer": f"{customer.pk}/change/",
        "customers/interaction": "add/",
        "customers/segment": f"{segment.pk}/change/",
        "surveys/campaign": f"{campaign.pk}/change/",
        "surveys/survey": f"{survey.pk}/change/",
        "surveys/response": None,
        "surveys/invitation": None,
        "followups/followup": f"{followup.pk}/change/",
        "followups/followuprule": f"{followup.rule_id}/change/",
        "followups/team": f"{team.pk}/change/",
        "followups/rootcause": f"{RootCause.objects.first().pk}/change/",
        "journeys/journey": "add/",
        "journeys/stage": f"{stage.pk}/change/",
        "journeys/touchpoint": f"{touchpoint.pk}/change/",
        "journeys/persona": f"{persona.pk}/change/",
    }


# Screenshots of every page would take a while; these are the ones reviewed.
SCREENSHOTS = {
    "customers/customer",
    "surveys/campaign",
    "surveys/response",
    "journeys/stage",
}


@pytest.mark.parametrize(
    "language, width", [("en", 1280), ("en", 360), ("ko", 1280), ("ko", 360)]
)
def test_it_fits_every_list_and_form_of_the_admin(
    browser, live_server, language, width
):
    forms = staff_data()
    # Every CX model registered in the admin, a new one included.
    assert set(forms) == {
        f"{model._meta.app_label}/{model._meta.model_name}"
        for model in admin.site._registry
        if not is_system_model(model)
    }
    user = UserFactory(username="cx-admin", is_staff=True, is_superuser=True)
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        locale="ko-KR" if language == "ko" else "en-US",
        is_mobile=width == 360,
        has_touch=width == 360,
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    problems = []
    try:
        session_for(page, live_server, user)
        for model, form in forms.items():
            pages = [("list", "")] + ([("form", form)] if form else [])
            for kind, path in pages:
                url = f"/admin/{model}/{path}"
                r = page.goto(live_server.url + url)
                if r.status != 200:
                    problems.append(f"{url}: status {r.status}")
                    continue
                if model in SCREENSHOTS:
                    name = model.split("/")[1]
                    screenshot(page, f"admin-{name}-{kind}-{language}-{width}")
                if (scroll := sideways_scroll(page)) > 0:
                    problems.append(f"{url}: the page scrolls {scroll} px sideways")
                problems += [f"{url}: {box}" for box in hidden_overflow(page)]
                problems += [f"{url}: broken {w}" for w in broken_words(page)]
                problems += [f"{url}: {v}" for v in axe_violations(page)]
    finally:
        context.close()
    assert problems == [], "\n".join(problems)
