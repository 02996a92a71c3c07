"""CSV import of customers and interactions over the API: the good rows are
imported, each bad row is named by its line, a retried file records nothing twice."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from cxm.customers import services
from cxm.customers.models import Customer, Interaction
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def upload(api, path: str, text: str | bytes, name: str = "rows.csv"):
    data = text.encode() if isinstance(text, str) else text
    return api.post(
        path, {"file": SimpleUploadedFile(name, data, "text/csv")}, format="multipart"
    )


def import_customers(api, text):
    return upload(api, "/api/customers/import/", text)


def import_interactions(api, text):
    return upload(api, "/api/interactions/import/", text)


def test_it_imports_customers_with_their_properties(api):
    r = import_customers(
        api,
        "email,name,locale,external_id,plan,seats,score,zip\n"
        "jane@example.com,Jane,ko,crm-1,pro,3,4.5,02134\n"
        "joe@example.com,Joe,,,free,,,\n",
    )

    assert r.status_code == 200, r.content
    assert r.json() == {
        "created": 2,
        "updated": 0,
        "recorded_before": 0,
        "errors": [],
        "error_count": 0,
    } or r.json() == {"created": 2, "updated": 0, "errors": [], "error_count": 0}
    jane = Customer.objects.get(email="jane@example.com")
    assert (jane.name, jane.locale, jane.external_id) == ("Jane", "ko", "crm-1")
    assert jane.properties == {"plan": "pro", "seats": 3, "score": 4.5, "zip": "02134"}
    joe = Customer.objects.get(email="joe@example.com")
    assert (joe.locale, joe.external_id, joe.properties) == ("en", "", {"plan": "free"})


def test_it_names_each_bad_row_by_its_line_and_imports_the_good_ones(api):
    CustomerFactory(email="taken@example.com", external_id="crm-9")

    r = import_customers(
        api,
        "email,name,locale,external_id\n"
        "good@example.com,Good,en,\n"
        "not an email,Bad,en,\n"
        '"multi@example.com","Two\nlines",en,\n'
        ",Nobody,en,\n"
        "fr@example.com,French,fr,\n"
        "other@example.com,Other,en,crm-9x\n"
        "taken@example.com,Clash,en,crm-10\n"
        "too,many,cells,here,really\n",
    )

    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["created"], body["updated"], body["error_count"]) == (3, 0, 5)
    lines = {e["line"]: e["error"] for e in body["errors"]}
    assert list(lines) == [3, 6, 7, 9, 10]
    assert lines[3] == "email: Enter a valid email address."
    assert "email" in lines[6]
    assert "'fr' is not a valid choice" in lines[7]
    assert lines[9] == (
        "email: This email belongs to the customer with the external id crm-9."
    )
    assert lines[10] == "This line has 5 cells; the header has 4."
    assert set(Customer.objects.values_list("email", flat=True)) == {
        "taken@example.com",
        "good@example.com",
        "multi@example.com",
        "other@example.com",
    }


def test_it_updates_by_external_id_then_by_email_in_any_case(api):
    by_id = CustomerFactory(
        email="old@example.com", external_id="crm-1", properties={"plan": "free"}
    )
    by_email = CustomerFactory(email="Jane@Example.com", name="Jane", external_id="")

    r = import_customers(
        api,
        "email,name,external_id,plan,region\n"
        "new@example.com,,crm-1,pro,\n"
        "jane@example.com,Jane Doe,crm-2,,seoul\n",
    )

    assert r.status_code == 200, r.content
    assert (r.json()["created"], r.json()["updated"]) == (0, 2)
    by_id.refresh_from_db()
    by_email.refresh_from_db()
    assert by_id.email == "new@example.com"
    # An empty cell leaves the name; properties are merged into the old ones.
    assert by_id.name != ""
    assert by_id.properties == {"plan": "pro"}
    assert (by_email.name, by_email.external_id) == ("Jane Doe", "crm-2")
    assert by_email.properties == {"region": "seoul"}


def test_it_applies_rows_about_one_customer_in_the_files_order(api):
    r = import_customers(
        api,
        "email,external_id,name\n"
        "jane@example.com,crm-1,First\n"
        "JANE@example.com,,Second\n"
        "jane.doe@example.com,crm-1,Third\n",
    )

    assert r.json()["created"] == 1, r.content
    assert r.json()["updated"] == 2
    customer = Customer.objects.get()
    assert (customer.email, customer.name) == ("jane.doe@example.com", "Third")


def test_it_reads_a_file_of_a_few_thousand_rows_in_batches(
    api, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(services, "IMPORT_BATCH", 500)
    rows = "".join(f"c{i}@example.com,C {i},{i}\n" for i in range(3000))
    bad = "".join(f"bad {i},,\n" for i in range(1200))

    # Per batch of 500: a lookup, an insert, savepoints; not a query a row.
    with django_assert_max_num_queries(80):
        r = import_customers(api, "email,name,n\n" + rows + bad)

    body = r.json()
    assert (body["created"], body["error_count"]) == (3000, 1200)
    assert len(body["errors"]) == 1000
    assert body["errors"][0]["line"] == 3002
    assert Customer.objects.count() == 3000
    assert Customer.objects.get(email="c2999@example.com").properties == {"n": 2999}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The submitted file is empty."),
        (b"\n\n", "The file is empty: give a header line first."),
        (b"name,plan\nJane,pro\n", "The header has no email column."),
        (b"\xff\xfe\x00e\x00m", "The file is not UTF-8 text."),
        (b"email,,plan\n", "Column 2 of the header has no name."),
        (b"email,Email\n", "The header names the column email twice."),
    ],
    ids=["empty", "blank", "no-email", "not-utf8", "unnamed", "twice"],
)
def test_it_answers_400_to_a_file_it_cannot_read(api, content, message):
    r = import_customers(api, content)

    assert r.status_code == 400
    assert r.json() == {"file": [message]}
    assert not Customer.objects.exists()


def test_it_answers_400_without_a_file(api):
    r = api.post("/api/customers/import/", {}, format="multipart")

    assert r.status_code == 400
    assert list(r.json()) == ["file"]


def test_it_answers_400_to_a_file_over_the_limit(api, settings):
    settings.IMPORT_MAX_BYTES = 10

    r = import_customers(api, "email\njane@example.com\n")

    assert r.status_code == 400
    assert r.json() == {"file": ["The file is larger than 10 bytes."]}


def test_it_names_a_line_that_is_not_utf8_and_keeps_the_rows_before(api):
    r = import_customers(api, b"email\na@example.com\nb\xff@example.com\nc@x.com\n")

    assert r.status_code == 200
    assert r.json()["created"] == 2
    assert r.json()["errors"] == [{"line": 3, "error": "This line is not UTF-8 text."}]


def test_it_reads_a_byte_order_mark_and_headers_in_any_case(api):
    r = import_customers(api, "\ufeffEmail,NAME\njane@example.com,Jane\n".encode())

    assert r.json()["created"] == 1, r.content
    assert Customer.objects.get().name == "Jane"


def test_it_lets_only_staff_import(agent_api):
    r = import_customers(agent_api, "email\njane@example.com\n")

    assert r.status_code == 403
    assert not Customer.objects.exists()


def test_it_streams_a_large_upload_from_a_temporary_file(api, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    text = "email\n" + "".join(f"c{i}@example.com\n" for i in range(2000))

    r = import_customers(api, text)

    assert r.json()["created"] == 2000, r.content


# Interactions


def test_it_imports_interactions_naming_customers_three_ways(api):
    jane = CustomerFactory(email="jane@example.com", external_id="crm-1")

    r = import_interactions(
        api,
        "customer,customer_email,customer_external_id,kind,channel,occurred_at,"
        "external_id,order_total\n"
        f"{jane.pk},,,purchase,web,2024-05-01T09:30:00+09:00,o-1,42.5\n"
        ",JANE@example.com,,support_call,phone,2024-05-02 10:00,,\n"
        ",,crm-1,app_visit,,,,\n",
    )

    assert r.status_code == 200, r.content
    assert r.json() == {
        "created": 3,
        "updated": 0,
        "recorded_before": 0,
        "errors": [],
        "error_count": 0,
    }
    purchase = Interaction.objects.get(kind="purchase")
    assert purchase.customer == jane
    assert purchase.channel == "web"
    assert purchase.occurred_at.isoformat() == "2024-05-01T00:30:00+00:00"
    assert purchase.properties == {"order_total": 42.5}
    call = Interaction.objects.get(kind="support_call")
    assert call.occurred_at.isoformat() == "2024-05-02T10:00:00+00:00"
    assert Interaction.objects.get(kind="app_visit").channel == "other"


def test_it_records_a_retried_file_once(api):
    CustomerFactory(email="jane@example.com")
    text = (
        "customer_email,kind,external_id\n"
        "jane@example.com,purchase,o-1\n"
        "jane@example.com,purchase,o-1\n"
        "jane@example.com,refund,o-2\n"
    )

    first = import_interactions(api, text)
    again = import_interactions(api, text)

    assert (first.json()["created"], first.json()["recorded_before"]) == (2, 1)
    assert (again.json()["created"], again.json()["recorded_before"]) == (0, 3)
    assert Interaction.objects.count() == 2


def test_it_names_unknown_customers_and_clashing_ids_by_line(api):
    jane = CustomerFactory(email="jane@example.com")
    other = CustomerFactory()
    Interaction.objects.create(customer=other, kind="purchase", external_id="o-1")

    r = import_interactions(
        api,
        "customer,customer_email,customer_external_id,kind,external_id\n"
        ",nobody@example.com,,purchase,\n"
        "999999,,,purchase,\n"
        ",,crm-404,purchase,\n"
        ",jane@example.com,,purchase,o-1\n"
        f"{jane.pk},jane@example.com,,purchase,\n"
        ",jane@example.com,,Not A Kind,\n"
        ",jane@example.com,,purchase,o-2\n",
    )

    assert r.status_code == 200, r.content
    lines = {e["line"]: e["error"] for e in r.json()["errors"]}
    assert lines == {
        2: "customer_email: There is no customer with the email nobody@example.com.",
        3: "customer: There is no customer 999999.",
        4: "customer_external_id: There is no customer with the external id 'crm-404'.",
        5: "external_id: The external id o-1 is already used by another "
        "customer's interaction or another kind.",
        6: "customer: Name the customer once: by customer (an id), "
        "customer_email or customer_external_id.",
        7: lines[7],
    }
    assert lines[7].startswith("kind: 'Not A Kind' is not an interaction kind")
    assert r.json()["created"] == 1
    assert Interaction.objects.filter(customer=jane).get().external_id == "o-2"


def test_it_answers_400_to_an_interaction_file_without_a_customer_column(api):
    r = import_interactions(api, "kind\npurchase\n")

    assert r.status_code == 400
    assert r.json() == {
        "file": [
            "The header has none of the columns customer, customer_email, "
            "customer_external_id."
        ]
    }


def test_it_records_through_interaction_record_when_a_writer_got_in_first(
    api, monkeypatch
):
    # As when another import records o-1 between the lookup and the insert.
    jane = CustomerFactory(email="jane@example.com")

    def lookup_then_race(external_ids):
        services.interaction_record(customer=jane, kind="purchase", external_id="o-1")
        return {}

    monkeypatch.setattr(services, "_interactions_recorded", lookup_then_race)

    r = import_interactions(
        api,
        "customer_email,kind,external_id\n"
        "jane@example.com,purchase,o-1\n"
        "jane@example.com,purchase,o-2\n",
    )

    assert (r.json()["created"], r.json()["recorded_before"]) == (1, 1), r.content
    assert Interaction.objects.count() == 2


def test_it_imports_through_the_services_when_a_writer_got_in_first(api, monkeypatch):
    # As when a customer is created between the batch's lookup and its insert.
    real = services._customers_matching
    raced = []

    def lookup_then_race(emails, external_ids):
        found = real(emails, external_ids)
        if not raced:
            raced.append(services.customer_create(email="JANE@example.com"))
        return found

    monkeypatch.setattr(services, "_customers_matching", lookup_then_race)

    r = import_customers(
        api, "email,name\njane@example.com,Jane\njoe@example.com,Joe\n"
    )

    assert (r.json()["created"], r.json()["updated"]) == (1, 1), r.content
    assert Customer.objects.get(pk=raced[0].pk).name == "Jane"
    assert Customer.objects.count() == 2
