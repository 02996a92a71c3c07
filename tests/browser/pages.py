"""What the browser tests check on every page: accessibility, width, Hangul, looks."""

from pathlib import Path

from django.conf import settings
from django.test import Client

# Every test user's password (tests.factories.UserFactory).
PASSWORD = "correct horse battery"

AXE = Path(settings.BASE_DIR) / "node_modules/axe-core/axe.min.js"
SCREENSHOTS = Path(settings.BASE_DIR) / "var/screenshots"

# Where a line wraps between two letters of one word: "감사합니/다".
BROKEN_WORDS_JS = r"""
() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const letter = /[\p{L}\p{N}]/u;
  let node;
  while ((node = walker.nextNode())) {
    const text = node.textContent;
    let lastTop = null;
    for (let i = 0; i < text.length; i++) {
      if (/\s/.test(text[i])) continue;
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (!rect || rect.width === 0) continue;
      if (lastTop !== null && rect.top > lastTop + 2 && i > 0
          && letter.test(text[i - 1]) && letter.test(text[i])) {
        broken.push(text.slice(Math.max(0, i - 8), i) + "/" + text.slice(i, i + 8));
      }
      lastTop = rect.top;
    }
  }
  return broken;
}
"""


def axe_violations(page) -> list[str]:
    """Runs axe-core (from the npm registry, see package.json) on the page."""
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run `make test`, which installs it")
    # Evaluated rather than added as a <script>, which the pages' Content-Security-
    # Policy refuses (it allows no inline script).
    page.evaluate(AXE.read_text() + "\n;undefined")
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']}))"
        ".violations.map(v => v.id + ': ' + v.help + ' at '"
        " + v.nodes.map(n => n.target.join(' ')).join(', '))"
    )
    return violations


def sideways_scroll(page) -> int:
    """How many pixels the page is wider than the viewport (0: none)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


# An element that scrolls sideways inside itself: content it hides until one
# scrolls it (Django's admin puts its lists and inlines in such boxes, which the
# page's own width never shows).
HIDDEN_OVERFLOW_JS = r"""
() => {
  const found = [];
  for (const el of document.querySelectorAll("body *")) {
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    const overflow = getComputedStyle(el).overflowX;
    if (overflow !== "auto" && overflow !== "scroll") continue;
    const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
      + [...el.classList].map(c => "." + c).join("");
    found.push(`${name}: ${el.scrollWidth} > ${el.clientWidth}`);
  }
  return found;
}
"""


def hidden_overflow(page) -> list[str]:
    """The boxes inside the page that scroll sideways on their own, each as
    "div.results: 761 > 631" (its content's width > its own): none on a page
    that fits."""
    return page.evaluate(HIDDEN_OVERFLOW_JS)


def broken_words(page) -> list[str]:
    return page.evaluate(BROKEN_WORDS_JS)


def screenshot(page, name: str) -> Path:
    """Writes var/screenshots/<name>.png, the whole page, for a reviewer."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page, name: str) -> None:
    """Screenshot, then: no axe violation, no sideways scroll, no broken word."""
    screenshot(page, name)
    assert axe_violations(page) == [], name
    assert sideways_scroll(page) <= 0, name
    assert broken_words(page) == [], name


def log_in(page, live_server, user, *, password: str = PASSWORD) -> None:
    """
    Logs `user` in through the log-in form and waits for the page they land on
    (their role's: cxm.followups.preferences.start_url_for).
    """
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)


def session_for(page, live_server, user) -> None:
    """Gives the browser `user`'s session cookie, as the log-in form would."""
    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
