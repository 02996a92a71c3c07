import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (make test installs it)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run `make system` to install chromium")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # tests make between page actions are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
    # Connections opened while Playwright's loop ran would keep the test database
    # from being dropped at the end.
    from django.db import connections

    connections.close_all()


@pytest.fixture
def phone(browser):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def small_phone(browser):
    """A 360 × 640 phone, the narrowest the pages are drawn for."""
    context = browser.new_context(
        viewport={"width": 360, "height": 640}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture(params=["en", "ko"])
def locale(request):
    """English, then Korean: the language the browser asks for."""
    return request.param


@pytest.fixture(params=[360, 1280], ids=["360", "desktop"])
def page(request, browser, locale):
    """A page in a browser that asks for `locale`, on a phone or a desktop."""
    phone = request.param == 360
    context = browser.new_context(
        viewport={"width": request.param, "height": 640 if phone else 900},
        is_mobile=phone,
        has_touch=phone,
        locale=locale,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.size = "360" if phone else "desktop"
    yield page
    context.close()
