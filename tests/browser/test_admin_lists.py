"""
The admin as CX staff meet it: the index grouped by what they work on, the
customer list with its property columns and filters, the responses list; at
360 px and on a desktop, in English and Korean.
"""

import pytest

from surveys.services import response_record
from tests.factories import CustomerFactory, InvitationFactory, UserFactory

from .pages import axe_violations, screenshot, sideways_scroll

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
