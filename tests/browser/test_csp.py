"""
Every kind of page works in Chromium under the Content-Security-Policy: the admin
(its lists, the survey builder with its inline questions, the preview), the API docs,
the staff pages (with an email in the outbox's frame) and the customer pages. A test
fails on any policy violation (the page's `securitypolicyviolation` event, or
Chromium's "Refused to …" in the console, which frames without script report too),
on any script error, and on a page served without the policy.
"""

import pytest

from cxm.outbox.backends import EmailBackend
from cxm.outbox.models import OutboxEmail
from surveys.models import Response
from surveys.services import invitation_message, response_record
from tests.factories import InvitationFactory, SurveyFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"

# Reports each violation to the test, from every frame that runs script.
REPORT_VIOLATIONS_JS = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportViolation(
    `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} `
    + `(${e.sourceFile || document.URL}:${e.lineNumber})`
  );
});
"""
CONSOLE_PROBLEMS = (
    "Content Security Policy",
    "Content-Security-Policy",
    "Refused to",
    "Permissions-Policy",
    "Permissions policy",
)


class Watched:
    """A page whose policy violations, script errors and policy-less pages add up
    in `problems`."""

    def __init__(self, browser, live_server):
        self.live_server = live_server
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.expose_binding(
            "reportViolation", lambda source, text: self.problems.append(text)
        )
        self.context.add_init_script(REPORT_VIOLATIONS_JS)
        self.page = self.context.new_page()
        self.page.set_default_timeout(10_000)
        self.page.on("pageerror", lambda e: self.problems.append(f"error: {e}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)

    def _console(self, message):
        if any(words in message.text for words in CONSOLE_PROBLEMS):
            self.problems.append(f"console {message.type}: {message.text}")

    def _response(self, response):
        """Every page (and frame) must come with the policy."""
        if response.request.resource_type != "document":
            return
        if "content-security-policy" not in response.headers:
            self.problems.append(f"no Content-Security-Policy on {response.url}")

    def open(self, path: str):
        response = self.page.goto(self.live_server.url + path)
        self.settle()
        return response

    def settle(self):
        """Waits for the page and what it loads, then for its reports."""
        self.page.wait_for_load_state("load")
        self.page.wait_for_timeout(100)

    def log_in(self, user, path="/admin/login/"):
        self.open(path)
        self.page.fill("#id_username", user.username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("[type=submit]")
        self.settle()

    def close(self):
        self.context.close()


@pytest.fixture
def watched(browser, live_server):
    watched = Watched(browser, live_server)
    yield watched
    watched.close()


@pytest.fixture
def admin_user(db):
    return UserFactory(username="admin", is_staff=True, is_superuser=True)


def detractor(**kwargs):
    invitation = InvitationFactory(**kwargs)
    response_record(invitation=invitation, score=2, comment="Late again")
    return invitation


def test_it_runs_the_admin_under_the_policy(watched, admin_user):
    survey = SurveyFactory(name="Delivery NPS")
    detractor(campaign__survey=survey)
    page = watched.page

    watched.log_in(admin_user)
    assert page.locator("#site-name").is_visible()
    # Every list and every add form the admin's index links to.
    links = page.eval_on_selector_all(
        "#content-main a", "links => links.map(a => a.pathname)"
    )
    assert len(links) > 20
    for path in dict.fromkeys(links):
        response = watched.open(path)
        assert response.ok, path
    watched.open(f"/admin/surveys/response/{Response.objects.get().pk}/change/")
    watched.open("/admin/surveys/survey/?q=Delivery")

    # The survey builder: its questions inline, one more added by admin's script.
    watched.open(f"/admin/surveys/survey/{survey.pk}/change/")
    inline_forms = page.locator(".inline-related:not(.empty-form)")
    before = inline_forms.count()
    page.click(".add-row a")
    assert inline_forms.count() == before + 1
    page.click(".inline-related:not(.empty-form) >> nth=-1 >> .inline-deletelink")
    assert inline_forms.count() == before

    page.click("a.preview-link >> nth=0")
    page.wait_for_url("**/preview/**")
    watched.settle()
    assert page.locator("#preview-bar").is_visible()
    page.click("label[for$='-9']")
    page.click("#send")
    watched.settle()
    assert "Nothing was recorded" in page.inner_text("#preview-bar")

    watched.open("/admin/surveys/survey/templates/")
    # A form with date and time widgets, and the calendar they open.
    watched.open("/admin/surveys/campaign/add/")
    page.click(".datetimeshortcuts a >> text=Today")
    page.click("#calendarlink0")
    assert page.locator("#calendarbox0").is_visible()
    page.click("#calendarbox0 .calendarnav-next")
    page.click("#clocklink0")
    page.click("#clockbox0 a >> text=Noon")

    assert watched.problems == []


def test_it_runs_the_api_docs_under_the_policy(watched, admin_user):
    detractor()
    page = watched.page

    watched.log_in(admin_user)
    response = watched.open("/api/docs/")
    assert "nonce-" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock-tag")
    assert "cxm API" in page.inner_text(".information-container")

    # Try a request from the page: Swagger UI's fetch is allowed too.
    operation = page.locator(".opblock-get", has_text="/api/customers/").first
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()
    page.wait_for_selector(".live-responses-table .response-col_status")
    assert "200" in operation.locator(".live-responses-table").inner_text()

    # DRF's browsable API, for staff exploring in a browser.
    watched.open("/api/customers/")
    assert page.locator(".response-info").is_visible()

    assert watched.problems == []


def test_it_runs_the_staff_pages_under_the_policy(
    watched, admin_user, live_server, settings
):
    settings.SITE_URL = live_server.url  # the email's logo and links
    invitation = detractor()
    EmailBackend().send_messages([invitation_message(invitation=invitation)])
    email = OutboxEmail.objects.get()
    page = watched.page

    watched.log_in(admin_user, path="/accounts/login/")
    page.wait_for_url("**/followups/")
    watched.open("/followups/")
    page.click(f"tr:has-text('{invitation.customer}') td.id a")
    watched.settle()
    page.fill("#note-form textarea", "Called; sending a voucher.")
    page.click("#note-form button")
    watched.settle()
    assert "Called; sending a voucher." in page.inner_text("#timeline")
    watched.open("/dashboard/")

    watched.open("/outbox/")
    page.click(f"text={email.subject}")
    watched.settle()
    # The email draws with its inline styles, images and links in its frame.
    frame = page.frame_locator("iframe.email")
    score = frame.locator("a", has_text="10").first
    assert score.get_attribute("href").startswith(f"{live_server.url}/s/")
    assert frame.locator("td.cxm-score").first.evaluate(
        "td => getComputedStyle(td).borderTopWidth"
    ) == ("4px")
    logo = frame.locator("img").first
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")
    with page.expect_popup() as popup:
        score.click()
    assert f"/s/{invitation.token}/" in popup.value.url

    assert watched.problems == []


def test_it_runs_the_customer_pages_under_the_policy(watched):
    invitation = InvitationFactory()
    closed = InvitationFactory(campaign__expires_at="2000-01-01T00:00:00Z")
    page = watched.page

    response = watched.open(f"/s/{invitation.token}/?score=3")
    policy = response.headers["content-security-policy"]
    assert "nonce-" not in policy  # no inline script or style at all
    assert "'unsafe-inline'" not in policy
    page.click("label[for=score-1]")
    page.click("#send")
    page.wait_for_url("**/more/")
    watched.settle()
    page.fill("#id_comment", "The courier never came.")
    page.click("#send")
    page.wait_for_url("**/thanks/")
    watched.settle()
    assert Response.objects.get(invitation=invitation).comment == (
        "The courier never came."
    )
    watched.open(f"/s/{invitation.token}/unsubscribe/")
    page.click("button[type=submit]")
    watched.settle()
    watched.open(f"/s/{closed.token}/")
    watched.open("/s/not-a-token/")
    watched.open("/nowhere/")
    # A stale page: its form's CSRF cookie is gone.
    watched.open(f"/s/{invitation.token}/")
    watched.context.clear_cookies()
    page.click("#send")
    watched.settle()
    assert page.locator("a", has_text="Open the page again").is_visible()

    assert watched.problems == []


IMPORT_CSV = (
    "email,name,locale,external_id,plan\n"
    "new@example.com,New Customer,ko,crm-2,pro\n"
    "jane@example.com,Jane Doe,,,free\n"
    "not an email,Bad,en,,\n"
)


@pytest.mark.parametrize("language", ["en", "ko"])
def test_it_runs_the_customer_import_and_export_under_the_policy(
    watched, admin_user, language, tmp_path
):
    from tests.browser.pages import screenshot
    from tests.factories import CustomerFactory

    CustomerFactory(email="jane@example.com", name="Jane")
    page = watched.page
    watched.context.add_cookies(
        [{"name": "django_language", "value": language, "url": watched.live_server.url}]
    )
    watched.log_in(admin_user)

    watched.open("/admin/customers/customer/import/")
    csv_file = tmp_path / "customers.csv"
    csv_file.write_text(IMPORT_CSV)
    page.set_input_files("#id_import_file", str(csv_file))
    page.click("#content .submit-row [type=submit]")
    watched.settle()
    # The preview of a file with a refused row names that row (and, as
    # django-import-export does, offers to confirm only a file without one).
    assert page.locator("table.import-preview tbody tr").count() == 1
    assert "not an email" in page.inner_text("table.import-preview")
    screenshot(page, f"admin-customer-import-preview-{language}")

    watched.open("/admin/customers/customer/export/")
    screenshot(page, f"admin-customer-export-{language}")

    assert watched.problems == []
