"""
The customer's pages in Chromium: answered with the keyboard alone, one tap from the
email's score link, Korean on a 360 px phone, and axe-core on every page, with
screenshots under var/screenshots/ (phone and desktop, English and Korean).
"""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from surveys.models import Response
from surveys.services import invitation_message, response_record, survey_create
from tests.factories import InvitationFactory

from .pages import broken_words, check_page, screenshot, sideways_scroll

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FAST = {"value": "fast", "en": "Fast delivery", "ko": "빠른 배송"}
PRICE = {"value": "price", "en": "Fair price", "ko": "합리적인 가격"}
HELP = {"value": "help", "en": "Helpful staff", "ko": "친절한 직원"}


def invite(kind="nps", locale="en", questions=None):
    survey = survey_create(name=kind, kind=kind, questions=questions)
    return InvitationFactory(campaign__survey=survey, customer__locale=locale)


def link(live_server, invitation, suffix=""):
    return f"{live_server.url}/s/{invitation.token}/{suffix}"


@pytest.mark.parametrize(
    "kind, presses, score", [("nps", 8, 8), ("csat", 3, 4), ("ces", 5, 6)]
)
def test_it_lets_a_customer_answer_with_the_keyboard_alone(
    live_server, desktop, kind, presses, score
):
    invitation = invite(
        kind,
        questions=[
            {
                "type": "multiple_choice",
                "text_en": "What mattered?",
                "choices": [FAST, PRICE],
            }
        ],
    )
    desktop.goto(link(live_server, invitation))

    desktop.keyboard.press("Tab")  # into the scale: its first score
    for _ in range(presses):
        desktop.keyboard.press("ArrowRight")
    assert desktop.locator(f"#score-{score}").is_checked()
    desktop.keyboard.press("Tab")
    assert desktop.evaluate("document.activeElement.id") == "send"
    desktop.keyboard.press("Enter")

    desktop.wait_for_url("**/more/")
    assert Response.objects.get().score == score
    desktop.keyboard.press("Tab")
    assert desktop.evaluate("document.activeElement.id") == "id_comment"
    desktop.keyboard.type("Quick and friendly.")
    desktop.keyboard.press("Tab")  # the first choice
    desktop.keyboard.press("Space")
    desktop.keyboard.press("Tab")  # the second choice
    desktop.keyboard.press("Tab")  # the button
    desktop.keyboard.press("Enter")

    desktop.wait_for_url("**/thanks/")
    response = Response.objects.get()
    assert (response.score, response.comment) == (score, "Quick and friendly.")
    assert sorted(map(str, (a.value for a in response.answers.all()))) == sorted(
        [str(score), "Quick and friendly.", "['fast']"]
    )


def test_it_saves_the_score_clicked_in_the_email_with_one_tap(live_server, small_phone):
    invitation = invite()
    html = invitation_message(invitation=invitation).alternatives[0][0]
    hrefs = re.findall(r'href="([^"]+\?score=(\d+))"', html)
    url = next(href for href, score in hrefs if score == "2")
    url = url.replace("http://testserver", live_server.url)

    small_phone.goto(url)
    assert not Response.objects.exists()  # opening the link records nothing
    assert small_phone.locator("#score-2").is_checked()
    button = small_phone.locator("#send").bounding_box()
    assert button["y"] + button["height"] <= 640  # visible without scrolling
    screenshot(small_phone, "answer-one-tap-en-360")

    taps = 0
    small_phone.tap("#send")
    taps += 1

    small_phone.wait_for_url("**/more/")
    assert taps == 1
    assert Response.objects.get().score == 2


def test_it_asks_a_korean_customer_on_a_small_phone_without_broken_words(
    live_server, small_phone
):
    invitation = invite("nps", "ko")
    small_phone.goto(link(live_server, invitation) + "?score=9")

    heading = small_phone.locator("h1.question-text").inner_text()
    assert heading.startswith("친구나 동료에게 cxm 서비스를 추천하실")
    assert "(를)" not in small_phone.content()
    assert sideways_scroll(small_phone) <= 0
    assert broken_words(small_phone) == []
    word_break = small_phone.evaluate(
        "getComputedStyle(document.querySelector('h1')).wordBreak"
    )
    assert word_break == "keep-all"
    # The two rows of the scale keep 0 at the start and 10 at the end, each with
    # its label under it.
    zero = small_phone.locator("label[for=score-0]").bounding_box()
    ten = small_phone.locator("label[for=score-10]").bounding_box()
    low = small_phone.locator(".end.low").bounding_box()
    high = small_phone.locator(".end.high").bounding_box()
    assert ten["y"] > zero["y"]
    assert abs(low["x"] - zero["x"]) < 2 and low["y"] > zero["y"]
    assert abs((high["x"] + high["width"]) - (ten["x"] + ten["width"])) < 2
    assert high["y"] > ten["y"]
    assert zero["width"] >= 40 and zero["height"] >= 44  # thumb-sized
    boxes = [
        small_phone.locator(f"label[for=score-{n}]").bounding_box() for n in range(11)
    ]
    for row in (boxes[:6], boxes[6:]):  # each row in order, left to right
        assert [b["y"] for b in row] == [row[0]["y"]] * len(row)
        assert [b["x"] for b in row] == sorted(b["x"] for b in row)
    check_page(small_phone, "answer-nps-ko-360")

    small_phone.tap("#send")
    small_phone.wait_for_url("**/more/")
    check_page(small_phone, "answer-more-ko-360")
    small_phone.fill("#id_comment", "상담원이 친절하고 배송도 빨랐어요.")
    small_phone.tap("#send")
    small_phone.wait_for_url("**/thanks/")
    assert "소중한 의견 감사합니다!" in small_phone.content()
    check_page(small_phone, "thanks-ko-360")
    assert Response.objects.get().comment == "상담원이 친절하고 배송도 빨랐어요."


@pytest.mark.parametrize("locale", ["en", "ko"])
@pytest.mark.parametrize("width", [360, 1280])
def test_it_passes_axe_on_every_customer_page(live_server, browser, locale, width):
    context = browser.new_context(
        viewport={"width": width, "height": 640 if width == 360 else 900},
        is_mobile=width == 360,
        has_touch=width == 360,
    )
    page = context.new_page()
    page.set_default_timeout(10_000)
    size = "360" if width == 360 else "desktop"
    try:
        for kind in ("nps", "csat", "ces"):
            invitation = invite(kind, locale)
            page.goto(link(live_server, invitation) + "?score=3")
            check_page(page, f"answer-{kind}-{locale}-{size}")

        custom = invite(
            "custom",
            locale,
            questions=[
                {
                    "type": "score",
                    "text_en": "How was setup?",
                    "text_ko": "설정은 어떠셨나요?",
                    "scale_low": 1,
                    "scale_high": 4,
                    "label_low_en": "Hard",
                    "label_high_en": "Easy",
                    "label_low_ko": "어려움",
                    "label_high_ko": "쉬움",
                },
                {
                    "type": "single_choice",
                    "text_en": "Your plan?",
                    "text_ko": "요금제는?",
                    "choices": [FAST, PRICE],
                    "required": True,
                },
                {
                    "type": "multiple_choice",
                    "text_en": "What mattered?",
                    "text_ko": "무엇이 중요했나요?",
                    "choices": [FAST, PRICE, HELP],
                },
                {"type": "short_text", "text_en": "Your role?", "text_ko": "직무는?"},
                {
                    "type": "long_text",
                    "text_en": "Anything else?",
                    "text_ko": "더 하실 말씀은?",
                },
            ],
        )
        page.goto(link(live_server, custom))
        check_page(page, f"answer-custom-{locale}-{size}")
        page.click("#send")  # the required choice is missing: errors on the page
        page.wait_for_selector(".field-error")
        check_page(page, f"answer-custom-errors-{locale}-{size}")

        answered = invite("nps", locale)
        response_record(invitation=answered, score=9, comment="")
        page.goto(link(live_server, answered, "more/"))
        check_page(page, f"answer-more-{locale}-{size}")
        page.goto(link(live_server, answered, "thanks/"))
        check_page(page, f"thanks-promoter-{locale}-{size}")
        unhappy = invite("csat", locale)
        response_record(invitation=unhappy, score=1)
        page.goto(link(live_server, unhappy, "thanks/"))
        check_page(page, f"thanks-detractor-{locale}-{size}")

        closed = invite("nps", locale)
        closed.campaign.expires_at = timezone.now() - timedelta(days=1)
        closed.campaign.save()
        page.goto(link(live_server, closed))
        check_page(page, f"closed-{locale}-{size}")

        page.goto(link(live_server, answered, "unsubscribe/"))
        check_page(page, f"unsubscribe-{locale}-{size}")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        check_page(page, f"unsubscribed-{locale}-{size}")
    finally:
        context.close()
