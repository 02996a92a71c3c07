"""
The invitation email as Chromium draws it, at a desktop client's 600 px and a
phone's 360 px and 320 px: no sideways scrolling, every score a working link. The
PNGs under var/screenshots/ are for a reviewer to look at.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from surveys.services import invitation_message
from tests.factories import InvitationFactory, SurveyFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db]

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
SCALES = {"nps": range(0, 11), "csat": range(1, 6), "ces": range(1, 8)}
WIDTHS = (600, 360, 320)


def invitation_html(*, kind: str, language: str) -> tuple[str, str]:
    """Returns (the invitation's personal link, the HTML part of its email)."""
    invitation = InvitationFactory(
        campaign__survey=SurveyFactory(kind=kind),
        customer__locale=language,
        customer__name="Ana Kim" if language == "en" else "김아나",
    )
    [(html, mimetype)] = invitation_message(invitation=invitation).alternatives
    assert mimetype == "text/html"
    return invitation.link, html


def without_style_blocks(html: str) -> str:
    """The email as Gmail and others show it: <style> dropped, inline styles kept."""
    return re.sub(r"<style[^>]*>.*?</style>", "", html, flags=re.DOTALL)


def serve_static(route):
    """Serves the logo (and any static file) from disk; nothing leaves the machine."""
    path = route.request.url.split("/static/", 1)[-1]
    file = Path(settings.BASE_DIR) / "static" / path
    if "/static/" in route.request.url and file.is_file():
        route.fulfill(path=file)
    else:
        route.abort()


@pytest.fixture(scope="module", autouse=True)
def _close_connections(browser):
    """
    Closes the database connections these tests opened while Playwright's event
    loop ran: Django keeps them apart from the ones opened before, where
    pytest-django's teardown would not find them, so the test database could not
    be dropped at the end.
    """
    yield
    connections.close_all()


@pytest.fixture
def open_email(browser):
    """Opens HTML at a viewport `width` wide; returns the page."""
    contexts = []

    def open_email(html: str, *, width: int):
        context = browser.new_context(viewport={"width": width, "height": 480})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.route("**/*", serve_static)
        page.set_content(html, wait_until="load")
        return page

    yield open_email
    for context in contexts:
        context.close()


def box(page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


def score_links(page) -> list[str]:
    return page.eval_on_selector_all(
        "a[href*='?score=']", "links => links.map(a => a.getAttribute('href'))"
    )


@pytest.mark.parametrize("language", ["en", "ko"])
@pytest.mark.parametrize("kind", list(SCALES))
def test_it_fits_each_width_with_every_score_a_link(open_email, kind, language):
    link, html = invitation_html(kind=kind, language=language)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    for width in WIDTHS:
        page = open_email(html, width=width)

        assert page.evaluate("document.documentElement.lang") == language
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"{kind}/{language} scrolls sideways at {width}"
        assert score_links(page) == [f"{link}?score={n}" for n in SCALES[kind]]
        for n in SCALES[kind]:
            button = box(page, f"a[href$='?score={n}']")
            assert button["x"] >= 0 and button["x"] + button["width"] <= width
            assert button["height"] >= 40  # a finger's worth
        survey = page.get_by_role("link", name=re.compile(r"survey|설문조사"))
        assert survey.get_attribute("href") == link
        page.screenshot(
            path=SCREENSHOTS / f"email-{kind}-{language}-{width}.png", full_page=True
        )


@pytest.mark.parametrize("width", WIDTHS)
def test_it_fits_without_its_style_block(open_email, width):
    link, html = invitation_html(kind="nps", language="ko")

    page = open_email(without_style_blocks(html), width=width)

    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert score_links(page) == [f"{link}?score={n}" for n in range(11)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(
        path=SCREENSHOTS / f"email-nps-ko-{width}-no-style.png", full_page=True
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_it_offers_a_custom_survey_its_button_at_each_width(open_email, width):
    invitation = InvitationFactory(
        campaign__survey=SurveyFactory(
            kind="custom",
            questions=[{"type": "long_text", "text_en": "How did we do?"}],
        ),
        customer__name="Ana Kim",
    )
    [(html, _)] = invitation_message(invitation=invitation).alternatives

    page = open_email(html, width=width)

    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert score_links(page) == []
    button = page.get_by_role("link", name="Open the survey")
    assert button.get_attribute("href") == invitation.link
    assert button.bounding_box()["height"] >= 44
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"email-custom-en-{width}.png", full_page=True)


def test_it_puts_nps_in_two_rows_on_a_phone_with_the_end_labels_under_the_ends(
    open_email,
):
    _, html = invitation_html(kind="nps", language="en")

    page = open_email(without_style_blocks(html), width=360)

    zero, five, six, ten = (box(page, f"a[href$='?score={n}']") for n in (0, 5, 6, 10))
    assert zero["y"] == five["y"] < six["y"] == ten["y"]
    low = box(page, "text=Not at all likely")
    high = box(page, "text=Extremely likely")
    # The low label starts under 0, between the rows; the high one ends under 10.
    assert five["y"] + five["height"] <= low["y"] < six["y"]
    assert abs(low["x"] - zero["x"]) <= 4
    assert high["y"] >= ten["y"] + ten["height"]
    assert abs((high["x"] + high["width"]) - (ten["x"] + ten["width"])) <= 4


def test_it_puts_nps_in_one_row_where_there_is_room(open_email):
    _, html = invitation_html(kind="nps", language="en")

    page = open_email(html, width=600)

    rows = {box(page, f"a[href$='?score={n}']")["y"] for n in range(11)}
    assert len(rows) == 1


@pytest.mark.parametrize("kind", ["csat", "ces"])
def test_it_puts_csat_and_ces_in_one_row_on_a_small_phone(open_email, kind):
    _, html = invitation_html(kind=kind, language="ko")

    page = open_email(without_style_blocks(html), width=320)

    rows = {box(page, f"a[href$='?score={n}']")["y"] for n in SCALES[kind]}
    assert len(rows) == 1


def test_it_shows_the_logo_from_the_site(open_email):
    _, html = invitation_html(kind="nps", language="en")

    page = open_email(html, width=360)

    logo = page.get_by_role("img", name=settings.COMPANY_NAME)
    assert logo.get_attribute("src").startswith("http://testserver/static/")
    assert page.evaluate("document.querySelector('img').naturalWidth"), (
        "the logo did not load"
    )


LOW_CONTRAST_TEXT = """() => {
  const luminance = (color) => {
    const [r, g, b] = color.match(/[\\d.]+/g).slice(0, 3).map((v) => {
      v = Number(v) / 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const color = getComputedStyle(el).backgroundColor;
      if (color !== "transparent" && !/, 0\\)$/.test(color)) return color;
    }
    return "rgb(255, 255, 255)";
  };
  const low = [];
  for (const el of document.body.querySelectorAll("*")) {
    const text = [...el.childNodes]
      .filter((node) => node.nodeType === Node.TEXT_NODE)
      .map((node) => node.textContent.trim())
      .join("");
    if (!text || !el.getClientRects().length) continue;  // hidden: the preheader
    const a = luminance(getComputedStyle(el).color);
    const b = luminance(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push([text, Math.round(ratio * 100) / 100]);
  }
  return low;
}"""


@pytest.mark.parametrize("kind", list(SCALES))
def test_it_keeps_every_text_at_aa_contrast(open_email, kind):
    _, html = invitation_html(kind=kind, language="en")

    page = open_email(html, width=360)

    assert page.evaluate(LOW_CONTRAST_TEXT) == []
