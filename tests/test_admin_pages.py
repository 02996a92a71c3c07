"""The campaign page's audience, send and email preview; the customer and
responses lists (issue 9's admin for CX staff)."""

from unittest import mock

import pytest
from django.utils import timezone
from django.utils.html import format_html

from cxm.customers.services import interaction_record
from cxm.paginators import estimated_count
from surveys.models import CampaignStatus
from surveys.services import response_record
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    InvitationFactory,
    UserFactory,
    property_segment,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def audience():
    CustomerFactory(properties={"plan": "pro"})
    CustomerFactory(properties={"plan": "pro"}, unsubscribed_at=timezone.now())
    CustomerFactory(properties={"plan": "free"})
    return property_segment("plan", "pro")


def test_it_counts_the_audience_of_the_segment_chosen(admin_client, audience):
    campaign = CampaignFactory()
    url = f"/admin/surveys/campaign/{campaign.pk}/audience/"

    everyone = admin_client.get(url, {"segment": ""}).json()
    pro = admin_client.get(url, {"segment": audience.pk}).json()
    new = admin_client.get(
        "/admin/surveys/campaign/audience/", {"segment": audience.pk}
    )

    assert (everyone["audience"], everyone["invited"]) == (3, 2)
    assert (pro["audience"], pro["invited"]) == (2, 1)
    assert pro["excluded_reasons"] == [
        {"reason": "unsubscribed", "label": "unsubscribed", "count": 1}
    ]
    assert new.json()["invited"] == 1
    # The campaign itself is not changed by looking.
    campaign.refresh_from_db()
    assert campaign.segment is None


@pytest.mark.parametrize(
    "query",
    [
        {"segment": "999999"},
        {"segment": "x"},
        {"segment": "9" * 30},
        {"contact_frequency_days": "-1"},
        {"contact_frequency_days": "99999999"},
    ],
)
def test_it_refuses_a_bad_audience_question_with_a_400(admin_client, query):
    campaign = CampaignFactory()
    r = admin_client.get(f"/admin/surveys/campaign/{campaign.pk}/audience/", query)
    assert r.status_code == 400
    assert r.json()["detail"]


def test_it_confirms_then_sends_through_the_service(
    admin_client, audience, django_capture_on_commit_callbacks
):
    campaign = CampaignFactory(segment=audience)
    url = f"/admin/surveys/campaign/{campaign.pk}/send/"

    page = admin_client.get(url).content.decode()
    assert "sending would invite 1." in page and "Send to 1 customer" in page

    import surveys.admin

    with (
        mock.patch.object(
            surveys.admin, "campaign_send", wraps=surveys.admin.campaign_send
        ) as spy,
        django_capture_on_commit_callbacks(execute=True),
    ):
        r = admin_client.post(url)
    assert r.status_code == 302
    assert spy.call_count == 1
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SENT
    # Sent: no second confirmation.
    assert admin_client.get(url).status_code == 302
    assert (
        "Send…"
        not in admin_client.get(
            f"/admin/surveys/campaign/{campaign.pk}/change/"
        ).content.decode()
    )


def test_it_previews_the_email_in_each_language(admin_client):
    campaign = CampaignFactory(subject_ko="설문에 답해 주세요")
    base = f"/admin/surveys/campaign/{campaign.pk}/email/"

    korean = admin_client.get(base, {"language": "ko"})
    html = admin_client.get(base + "html/", {"language": "ko"})
    english = admin_client.get(base, {"language": "xx"}).content.decode()

    assert "설문에 답해 주세요" in korean.content.decode()
    assert "frame-src 'self'" in korean["Content-Security-Policy"]
    assert "김지수" in html.content.decode()
    assert "sandbox" in html["Content-Security-Policy"]
    assert "script-src" not in html["Content-Security-Policy"]
    assert "Alex Kim" in english


def test_it_lists_customers_with_their_properties_in_fixed_queries(
    admin_client, django_assert_num_queries
):
    for n in range(3):
        CustomerFactory(properties={"plan": ["pro", "free"][n % 2], "region": "Seoul"})
    admin_client.get("/admin/customers/customer/")
    with django_assert_num_queries(7) as few:
        r = admin_client.get("/admin/customers/customer/")
    CustomerFactory.create_batch(20, properties={"plan": "team"})
    with django_assert_num_queries(len(few.captured_queries)):
        admin_client.get("/admin/customers/customer/")
    page = r.content.decode()
    assert "Seoul" in page and "plan" in page
    # Ordered by lower(email), which its unique index serves.
    assert any(
        'ORDER BY LOWER("customers_customer"."email")' in q["sql"]
        for q in few.captured_queries
    )

    r = admin_client.get("/admin/customers/customer/", {"property_plan": '"pro"'})
    assert r.context["cl"].result_count == 2
    r = admin_client.get("/admin/customers/customer/", {"q": "customer"})
    assert r.status_code == 200


def test_it_finds_a_customer_by_email_name_or_external_id(admin_client):
    jisu = CustomerFactory(
        email="jisu.kim@example.com", name="김지수", external_id="crm-4711"
    )
    CustomerFactory(email="alex@example.com", name="Alex Park", external_id="crm-12")
    for query in ("jisu.kim@", "지수", "crm-4711", "CRM-4711"):
        r = admin_client.get("/admin/customers/customer/", {"q": query})
        assert [c.pk for c in r.context["cl"].result_list] == [jisu.pk], query


def test_it_filters_responses_by_bucket(admin_client):
    for score in (2, 8, 10):
        response_record(invitation=InvitationFactory(), score=score, comment="Late")
    r = admin_client.get("/admin/surveys/response/", {"bucket": "detractor"})
    assert r.context["cl"].result_count == 1
    r = admin_client.get("/admin/surveys/response/", {"bucket": "promoter"})
    assert [resp.score for resp in r.context["cl"].result_list] == [10]


def test_it_estimates_a_large_count_and_counts_a_small_one(settings):
    from cxm.customers.models import Customer

    CustomerFactory.create_batch(3)
    assert estimated_count(Customer.objects.all()) == 3
    assert estimated_count(Customer.objects.filter(locale="en")) == 3


def test_it_finds_a_customer_by_email_in_any_case_through_the_api(client):
    client.force_login(UserFactory(is_staff=True))
    CustomerFactory(email="Ann@Example.com")
    r = client.get("/api/customers/", {"email": "ann@EXAMPLE.com"})
    assert [c["email"] for c in r.json()["results"]] == ["Ann@Example.com"]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/surveys/response/",
        "/admin/surveys/invitation/",
        "/admin/followups/followup/",
        "/admin/customers/interaction/",
    ],
)
def test_it_links_each_rows_customer_to_their_staff_page(admin_client, path):
    customer = CustomerFactory(name="박서연")
    invitation = InvitationFactory(customer=customer)
    # A detractor's answer: its follow-up too.
    response_record(invitation=invitation, score=2, comment="늦었어요")
    interaction_record(customer=customer, kind="purchase")

    html = admin_client.get(path).content.decode()

    link = format_html('<a href="/customers/{}/">{}</a>', customer.pk, customer)
    assert link in html


def test_it_shows_a_complaint_as_recorded_never_as_an_input(admin_client):
    # customer_update takes no complaint: an input would be saved as nothing.
    customer = CustomerFactory(complained_at=timezone.now())
    r = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")
    html = r.content.decode()
    assert "field-complained_at" in html
    assert 'name="complained_at' not in html
