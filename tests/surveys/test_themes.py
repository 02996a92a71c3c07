"""Comment themes in English and Korean (surveys.themes)."""

import pytest
from django.core.cache import cache

from surveys.models import Response
from surveys.themes import comment_themes, english_stem
from tests.api.helpers import answer
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_themes():
    cache.clear()


def said(*comments, **invitation):
    for comment in comments:
        answer(3, comment, **invitation)


def test_it_stems_english_words_to_one_theme():
    assert {english_stem(w) for w in ["shipping", "shipped", "ship", "ships"]} == {
        "ship"
    }
    assert english_stem("deliveries") == english_stem("delivery")
    assert english_stem("arrived") == english_stem("arrive") == "arriv"


def test_it_finds_english_terms_and_phrases_without_stop_words():
    said(
        "The delivery was late and the box was damaged.",
        "Late delivery again, customer service did not answer.",
        "Customer service was rude. Deliveries are always late!",
        "Great app",
    )

    themes = comment_themes(responses=Response.objects.all())

    top = {t.term: t.count for t in themes}
    assert top["late"] == 3
    assert top["delivery"] == 3  # "deliveries" counted as the same word
    assert top["customer service"] == 2
    assert "the" not in top and "was" not in top
    assert {t.language for t in themes} == {"en"}
    assert themes[0].count == 3


def test_it_finds_korean_nouns_and_stems():
    said(
        "배송이 너무 늦었어요",
        "배송이 늦고 포장도 찢어졌어요",
        "상담원이 친절했어요. 배송도 빨랐고요",
    )

    themes = comment_themes(responses=Response.objects.all(), limit=20)

    top = {t.term: t for t in themes}
    assert top["배송"].count == 3 and top["배송"].language == "ko"
    assert top["늦"].count == 2
    assert top["배송 늦"].count == 2
    assert "상담원" in top and "포장" in top
    assert "이" not in top and "어요" not in top


def test_it_reads_only_the_filtered_and_newest_comments(settings):
    mine, other = CampaignFactory(), CampaignFactory()
    said("Slow checkout", campaign=mine)
    said("Slow checkout", "Pricing is fair", campaign=mine)
    said("Pricing is too high", campaign=other)
    settings.THEMES_COMMENTS_MAX = 2

    themes = comment_themes(responses=Response.objects.filter(campaign=mine))

    assert {t.term: t.count for t in themes} == {
        "slow": 1,
        "checkout": 1,
        "pricing": 1,
        "fair": 1,
    }


def test_it_keeps_the_themes_of_a_filter_for_a_while(django_assert_num_queries):
    said("Slow checkout", "Slow checkout")
    responses = Response.objects.all()
    comment_themes(responses=responses)

    with django_assert_num_queries(0):
        themes = comment_themes(responses=responses)

    assert themes[0].term == "checkout" and themes[0].count == 2
