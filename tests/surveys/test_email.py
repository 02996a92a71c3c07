"""The invitation email: each kind's scale in both parts, the brand, the way out."""

import re
from html.parser import HTMLParser

import pytest

from surveys.services import invitation_message, invitations_deliver
from tests.factories import InvitationFactory, SurveyFactory

pytestmark = pytest.mark.django_db

CUSTOM_QUESTIONS = [
    {
        "type": "score",
        "text_en": "How was the delivery?",
        "scale_low": 0,
        "scale_high": 10,
    },
    {"type": "long_text", "text_en": "Anything else?"},
]


def invitation(kind="nps", **kwargs):
    questions = CUSTOM_QUESTIONS if kind == "custom" else None
    return InvitationFactory(
        campaign__survey=SurveyFactory(kind=kind, questions=questions), **kwargs
    )


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


class Links(HTMLParser):
    """Each link of an HTML email with the attributes of the cell around it."""

    def __init__(self, html):
        super().__init__()
        self.cells, self.links = [], []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag == "td":
            self.cells.append(dict(attrs))
        elif tag == "a":
            self.links.append((dict(attrs)["href"], self.cells[-1]))

    def handle_endtag(self, tag):
        if tag == "td":
            self.cells.pop()


def score_cells(html: str) -> dict[int, dict]:
    return {
        int(href.rsplit("?score=", 1)[1]): cell
        for href, cell in Links(html).links
        if "?score=" in href
    }


def test_it_lists_every_score_link_in_the_text_part():
    nps = invitation()

    text = invitation_message(invitation=nps).body

    for n in range(11):
        assert f"\n{n}: {nps.link}?score={n}\n" in text
    assert text.count("?score=") == 11
    assert "(0 = Not at all likely, 10 = Extremely likely)" in text
    assert nps.link + "\n" in text


@pytest.mark.parametrize(
    ("kind", "scores"), [("csat", range(1, 6)), ("ces", range(1, 8))]
)
def test_it_offers_csat_and_ces_their_own_scales(kind, scores):
    invited = invitation(kind)

    message = invitation_message(invitation=invited)

    assert list(score_cells(html_of(message))) == list(scores)
    assert re.findall(r"^(\d+): \S+\?score=\1$", message.body, re.M) == [
        str(n) for n in scores
    ]


def test_it_labels_the_ends_of_the_scale():
    message = invitation_message(invitation=invitation("ces"))

    assert "(1 = Strongly disagree, 7 = Strongly agree)" in message.body
    html = html_of(message)
    assert html.index("Strongly disagree") < html.index("Strongly agree")


def test_it_offers_a_custom_survey_only_its_button():
    custom = invitation("custom")

    message = invitation_message(invitation=custom)

    html = html_of(message)
    assert "?score=" not in message.body and "?score=" not in html
    assert f"Open the survey: {custom.link}\n" in message.body
    [(href, cell)] = [(h, c) for h, c in Links(html).links if h == custom.link]
    assert cell["bgcolor"] == "#1d4ed8"


def test_it_draws_the_score_buttons_on_cells_with_bgcolor_and_fixed_sizes():
    html = html_of(invitation_message(invitation=invitation()))

    cells = score_cells(html)
    assert list(cells) == list(range(11))
    for n, cell in cells.items():
        assert cell["bgcolor"].startswith("#"), n
        assert cell["width"] == "40" and cell["height"] == "40"
        assert f"background-color: {cell['bgcolor']}" in cell["style"]
    # Red to green, but only as a cue: detractors, passives and promoters differ.
    assert cells[0]["bgcolor"] == cells[6]["bgcolor"]
    assert len({cells[0]["bgcolor"], cells[7]["bgcolor"], cells[10]["bgcolor"]}) == 3


def test_it_sizes_the_buttons_of_a_row_to_fit_a_small_phone():
    for kind, width in [("nps", "40"), ("csat", "44"), ("ces", "34")]:
        html = html_of(invitation_message(invitation=invitation(kind)))
        assert {c["width"] for c in score_cells(html).values()} == {width}


def test_it_paints_the_survey_button_in_the_brand_colour(settings):
    settings.BRAND_COLOR = "#fde047"
    settings.BRAND_TEXT_COLOR = "#111827"
    invited = invitation()

    html = html_of(invitation_message(invitation=invited))

    [cell] = [c for h, c in Links(html).links if h == invited.link]
    assert cell["bgcolor"] == "#fde047"
    assert "color: #111827" in html


def test_it_shows_the_logo_at_an_absolute_address(settings):
    settings.COMPANY_NAME = "Acme"
    settings.COMPANY_LOGO = "cxm/logo.svg"

    html = html_of(invitation_message(invitation=invitation()))

    assert '<img src="http://testserver/static/cxm/logo.svg" alt="Acme"' in html


def test_it_names_the_company_without_a_logo(settings):
    settings.COMPANY_NAME = "Acme"
    settings.COMPANY_LOGO = ""

    message = invitation_message(invitation=invitation())

    assert "<img" not in html_of(message)
    assert ">Acme</td>" in html_of(message)
    assert "The Acme team" in message.body


def test_it_starts_with_a_hidden_preheader():
    html = html_of(invitation_message(invitation=invitation()))

    body = html.split("<body", 1)[1]
    preheader = re.search(r'<div style="display: none;[^"]*">([^<]*)', body)
    assert preheader.group(1).startswith(
        "A quick question: How likely are you to recommend cxm"
    )


def test_it_offers_the_way_out_in_both_parts():
    invited = invitation()
    unsubscribe = f"{invited.link}unsubscribe/"

    message = invitation_message(invitation=invited)

    assert f"Unsubscribe: {unsubscribe}" in message.body
    assert f'href="{unsubscribe}"' in html_of(message)


def test_it_writes_a_korean_email_without_particle_fill_ins(settings):
    settings.COMPANY_NAME = "에이스"

    message = invitation_message(invitation=invitation("custom", customer__locale="ko"))

    html = html_of(message)
    assert '<html lang="ko"' in html
    assert "설문조사 열기" in html
    for part in (message.subject, message.body, html):
        assert not re.search(r"\((을|를|이|가|은|는|와|과|으)\)", part)


# The campaign's own wording, per language


def test_it_uses_the_campaigns_subject_and_intro_in_the_customers_language():
    english = invitation(customer__locale="en")
    korean = InvitationFactory(campaign=english.campaign, customer__locale="ko")
    campaign = english.campaign
    campaign.subject_en, campaign.intro_en = "Your spring order", "Thanks & hello."
    campaign.subject_ko, campaign.intro_ko = (
        "봄 주문 설문조사",
        "구매해 주셔서 감사합니다.",
    )
    campaign.save()

    en, ko = (
        invitation_message(invitation=english),
        invitation_message(invitation=korean),
    )
    reminder = invitation_message(invitation=korean, reminder=1)

    assert en.subject == "Your spring order"
    assert "Thanks & hello." in en.body and "Thanks &amp; hello." in html_of(en)
    assert ko.subject == "봄 주문 설문조사"
    assert "구매해 주셔서 감사합니다." in ko.body
    assert "구매해 주셔서 감사합니다." in html_of(ko)
    assert reminder.subject == "다시 알려 드립니다: 봄 주문 설문조사"


def test_it_uses_the_standard_wording_where_the_campaign_has_none():
    english = invitation(customer__locale="en")
    korean = InvitationFactory(campaign=english.campaign, customer__locale="ko")
    english.campaign.subject_en = "Only in English"
    english.campaign.save()

    ko = invitation_message(invitation=korean)

    assert ko.subject == "고객님의 경험에 대해 간단히 여쭙니다"
    assert "Only in English" not in ko.body


def test_it_adds_a_mailto_to_list_unsubscribe_when_a_reply_address_is_set(settings):
    settings.EMAIL_REPLY_TO = "unsubscribe@acme.example"
    message = invitation_message(invitation=invitation())

    https, mailto = message.extra_headers["List-Unsubscribe"].split(", ")
    assert https.startswith("<http://testserver/s/") and https.endswith(
        "/unsubscribe/>"
    )
    assert mailto == "<mailto:unsubscribe@acme.example?subject=unsubscribe>"
    assert message.reply_to == ["unsubscribe@acme.example"]


def test_it_offers_only_the_https_unsubscribe_without_a_reply_address(settings):
    settings.EMAIL_REPLY_TO = ""
    message = invitation_message(invitation=invitation())

    assert "mailto:" not in message.extra_headers["List-Unsubscribe"]
    assert message.reply_to == []


def test_it_gives_each_email_of_a_batch_its_own_link_and_name(mailoutbox):
    campaign = invitation().campaign
    people = [('<Kim & "Lee">', "en"), ("김민수", "ko"), ("", "en"), ("Ann", "en")]
    invited = [
        InvitationFactory(campaign=campaign, customer__name=name, customer__locale=lang)
        for name, lang in people
    ]

    invitations_deliver(invitation_ids=[i.pk for i in invited])

    by_address = {m.to[0]: m for m in mailoutbox}
    for one in invited:
        message = by_address[one.customer.email]
        text, html = message.body, html_of(message)
        others = [i.token for i in invited if i != one]
        for part in (message.subject, text, html):
            assert "StandIn" not in part
            assert not any(token in part for token in others)
        assert f"/s/{one.token}/?score=10" in text
        assert f'href="http://testserver/s/{one.token}/?score=10"' in html
        assert f"/s/{one.token}/unsubscribe/" in html
    kim, korean, nameless, ann = (by_address[i.customer.email] for i in invited)
    assert 'Hello <Kim & "Lee">,' in kim.body
    assert "Hello &lt;Kim &amp; &quot;Lee&quot;&gt;," in html_of(kim)
    assert "<Kim" not in html_of(kim)
    assert "김민수" in korean.body and "김민수" in html_of(korean)
    assert nameless.body.startswith("Hello,")
    assert "Hello Ann," in ann.body and "Kim" not in ann.body
