"""Customers in the admin: written through the services, imported and exported."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cxm.customers import services
from cxm.customers.models import Customer
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def service_calls(monkeypatch):
    """The names of the customer services called, in order (they still run)."""
    calls = []
    for name in ("customer_create", "customer_update"):
        real = getattr(services, name)

        def spy(*, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(**kwargs)

        monkeypatch.setattr(services, name, spy)
    return calls


FORM = {"name": "", "locale": "en", "external_id": "", "properties": "{}"}


def test_it_adds_a_customer_through_the_service(admin_client, service_calls):
    r = admin_client.post(
        "/admin/customers/customer/add/",
        {**FORM, "email": "jane@example.com", "properties": '{"plan": "pro"}'},
    )

    assert r.status_code == 302, r.content.decode()
    assert service_calls == ["customer_create"]
    customer = Customer.objects.get()
    assert customer.properties == {"plan": "pro"}


def test_it_changes_a_customer_through_the_service(admin_client, service_calls):
    customer = CustomerFactory(email="jane@example.com")
    services.customer_unsubscribe(customer=customer)

    r = admin_client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {**FORM, "email": "jane@example.com", "name": "Jane Doe"},
    )

    assert r.status_code == 302, r.content.decode()
    assert service_calls == ["customer_update"]
    customer.refresh_from_db()
    assert customer.name == "Jane Doe"
    assert customer.unsubscribed_at is not None


def test_it_says_in_the_form_that_the_email_is_taken_in_another_case(admin_client):
    CustomerFactory(email="jane@example.com")

    r = admin_client.post(
        "/admin/customers/customer/add/", {**FORM, "email": "JANE@example.com"}
    )

    assert r.status_code == 200
    assert "A customer with this email already exists." in r.content.decode()
    assert Customer.objects.count() == 1


CSV_ROWS = (
    "email,name,locale,external_id,plan\n"
    "new@example.com,New,ko,crm-2,pro\n"
    "JANE@example.com,Jane Doe,,,free\n"
    "not an email,Bad,en,,\n"
    "taken@example.com,Other,en,crm-9,\n"
)


def preview(admin_client, text=CSV_ROWS):
    return admin_client.post(
        "/admin/customers/customer/import/",
        {
            "format": "0",
            "import_file": SimpleUploadedFile("rows.csv", text.encode(), "text/csv"),
        },
    )


def test_it_previews_a_csv_import_without_writing(admin_client):
    CustomerFactory(email="jane@example.com", name="Jane")
    CustomerFactory(email="taken@example.com", external_id="crm-1")

    r = preview(admin_client)

    assert r.status_code == 200
    page = r.content.decode()
    assert "Errors" in page or "validation" in page.lower()
    result = r.context["result"]
    assert [row.import_type for row in result.valid_rows()] == ["new", "update"]
    invalid = {row.number: row.error_dict for row in result.invalid_rows}
    assert list(invalid) == [3, 4]
    assert invalid[3] == {"email": ["Enter a valid email address."]}
    assert invalid[4] == {
        "email": ["This email belongs to the customer with the external id crm-1."]
    }
    assert Customer.objects.count() == 2
    assert Customer.objects.get(email="jane@example.com").name == "Jane"


def test_it_imports_the_previewed_file_through_the_services(
    admin_client, service_calls
):
    CustomerFactory(email="jane@example.com", name="Jane", properties={"n": 1})
    text = "email,name,locale,external_id,plan\n" + "".join(
        CSV_ROWS.splitlines(keepends=True)[1:3]
    )
    confirm = preview(admin_client, text).context["confirm_form"]
    service_calls.clear()

    r = admin_client.post(
        "/admin/customers/customer/process_import/",
        {**confirm.initial},
    )

    assert r.status_code == 302, r.content.decode()
    assert service_calls == ["customer_create", "customer_update"]
    new = Customer.objects.get(email="new@example.com")
    assert (new.name, new.locale, new.external_id) == ("New", "ko", "crm-2")
    assert new.properties == {"plan": "pro"}
    jane = Customer.objects.get(email="JANE@example.com")
    assert (jane.name, jane.properties) == ("Jane Doe", {"n": 1, "plan": "free"})


def test_it_exports_customers_as_csv_that_imports_back(admin_client):
    CustomerFactory(
        email="jane@example.com",
        name="Jane",
        locale="ko",
        external_id="crm-1",
        properties={"plan": "pro", "seats": 3},
    )

    r = admin_client.post(
        "/admin/customers/customer/export/",
        {
            "format": "0",
            "resource": "0",
            **{
                f"customerresource_{name}": "on"
                for name in ("email", "name", "locale", "external_id", "properties")
            },
        },
    )

    assert r.status_code == 200, r.content.decode()[:2000]
    text = r.content.decode("utf-8-sig")
    assert text.splitlines() == [
        "email,name,locale,external_id,properties",
        'jane@example.com,Jane,ko,crm-1,"{""plan"": ""pro"", ""seats"": 3}"',
    ]
    Customer.objects.all().delete()
    confirm = preview(admin_client, text).context["confirm_form"]
    admin_client.post("/admin/customers/customer/process_import/", confirm.initial)
    again = Customer.objects.get()
    assert (again.email, again.locale, again.properties) == (
        "jane@example.com",
        "ko",
        {"plan": "pro", "seats": 3},
    )
