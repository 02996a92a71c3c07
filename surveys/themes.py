"""
Comment themes: the words customers use most, in English and Korean.

One place knows how a comment is cut into terms (English stop words and simple
lemmas, Korean morphemes), so that the themes shown and the `term` filter that
lists a theme's comments agree.
"""

import hashlib
import re
import threading
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q

HANGUL = re.compile(r"[\uac00-\ud7a3]")
ENGLISH_WORD = re.compile(r"[a-z][a-z']*[a-z]|[a-z]", re.ASCII)
# A term to filter by: words of letters (any script), digits, ' and -.
TERM_MAX = 100

# The suffixes an English word sheds to its stem, longest first: "arrived",
# "arriving" and "arrives" all become "arriv", so they count as one theme and
# "arriv" finds them all in a comment.
SUFFIXES = ("ing", "ies", "ied", "ed", "es", "s", "y", "e")
STEM_MIN = 3


def english_stem(word: str) -> str:
    """Returns the stem of a lower-case English word (shipping → ship)."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= STEM_MIN:
            stem = word[: -len(suffix)]
            # "shipped", "shipping": the doubled consonant goes too.
            if (
                suffix in ("ing", "ed")
                and len(stem) > STEM_MIN
                and stem[-1] == stem[-2]
                and stem[-1] not in "aeiouls"
            ):
                stem = stem[:-1]
            return stem
    return word


def term_q(term: str) -> Q:
    """
    Returns the condition "the comment mentions `term`": each of its words (an
    English word by its stem, a Korean noun or stem as it is) appears in it.
    """
    condition = Q()
    for word in term.lower().split():
        if ENGLISH_WORD.fullmatch(word):
            word = english_stem(word)
        condition &= Q(comment__icontains=word)
    return condition


# Words that say nothing of the experience; lower-case.
ENGLISH_STOP_WORDS = frozenset(
    """
    a about above after again against all also am an and any are aren't as at be
    because been before being below between both but by can can't cannot could
    couldn't did didn't do does doesn't doing don't down during each even ever
    every few for from further get got had hadn't has hasn't have haven't having he
    her here hers herself him himself his how i i'd i'm i've if in into is isn't it
    it's its itself just let's like me more most much my myself no nor not now of
    off on once one only or other our ours ourselves out over own quite really
    same she should shouldn't so some still such than that that's the their theirs
    them themselves then there there's these they they're this those through to
    too under until up us very was wasn't we we're were weren't what when where
    which while who whom why will with won't would wouldn't yet you you're your
    yours yourself yourselves thank thanks thing things lot lots bit ok okay
    """.split()
)
# Korean morphemes kept as themes: nouns, and the stems of verbs and adjectives.
KOREAN_TAGS = {"NNG", "NNP", "VV", "VA", "XR", "SL"}
# Nouns and stems too common to be a theme (것 thing, 수 can, 하 do, 있 be …).
KOREAN_STOP = frozenset("것 수 때 등 거 번 좀 분 점 중 하 되 있 없 같 이 그 저".split())


@dataclass(frozen=True)
class Theme:
    """A term (a word, or a two-word phrase) and how many comments use it."""

    term: str
    count: int
    language: str  # "en" or "ko"

    @property
    def is_phrase(self) -> bool:
        return " " in self.term


_kiwi = None
_kiwi_lock = threading.Lock()


def korean_analyser():
    """
    Returns the process's Kiwi morphological analyser, loading it on first use: the
    model takes seconds and hundreds of MB to load, so once per process and only
    where Korean comments are read.
    """
    global _kiwi
    with _kiwi_lock:
        if _kiwi is None:
            from kiwipiepy import Kiwi

            _kiwi = Kiwi()
        return _kiwi


def _english_terms(comment: str) -> tuple[list[str], dict[str, str]]:
    """Returns the stems of a comment's words in order (None for a stop word), and
    each stem's form as written."""
    stems, forms = [], {}
    for word in ENGLISH_WORD.findall(comment.lower()):
        if word in ENGLISH_STOP_WORDS or len(word) < 2:
            stems.append(None)
            continue
        stem = english_stem(word)
        stems.append(stem)
        forms[stem] = word
    return stems, forms


def _korean_terms(tokens) -> list[str | None]:
    """Returns a Korean comment's content morphemes in order (None between them)."""
    terms = []
    for token in tokens:
        tag = token.tag.split("-")[0]
        if tag in KOREAN_TAGS and token.form not in KOREAN_STOP:
            terms.append(token.form.lower() if tag == "SL" else token.form)
        elif tag.startswith(("J", "E", "XS", "XP", "MAG")):
            # Particles, endings, affixes and adverbs (너무 too) do not part two
            # words of a phrase: 배송이 너무 늦었어요 says "배송 늦".
            continue
        else:
            terms.append(None)
    return terms


def _count(terms: list[str | None], counts: Counter) -> None:
    """Counts each term and each phrase of two terms side by side once per comment."""
    seen = {t for t in terms if t}
    seen |= {f"{a} {b}" for a, b in pairwise(terms) if a and b and a != b}
    counts.update(seen)


def comment_themes(*, responses, limit: int = 10) -> list[Theme]:
    """
    Returns the `limit` most frequent terms and two-word phrases in the comments of
    `responses` (a Response queryset), most frequent first, each with the number of
    comments that use it and its language. Reads only the THEMES_COMMENTS_MAX newest
    comments, and remembers the answer per filter for THEMES_CACHE_SECONDS.
    """
    comments = (
        responses.exclude(comment="")
        .order_by("-created_at", "-id")
        .values_list("comment", flat=True)[: settings.THEMES_COMMENTS_MAX]
    )
    sql, params = comments.query.sql_with_params()
    key = (
        "themes:"
        + hashlib.sha256(
            repr((sql, params, limit, settings.THEMES_COMMENTS_MAX)).encode()
        ).hexdigest()
    )
    found = cache.get(key)
    if found is None:
        found = _themes(list(comments), limit)
        cache.set(key, found, settings.THEMES_CACHE_SECONDS)
    return found


def _themes(comments: list[str], limit: int) -> list[Theme]:
    """Returns the themes of these comments (see comment_themes)."""
    counts = {"en": Counter(), "ko": Counter()}
    written: dict[str, Counter] = {}
    korean = [c for c in comments if HANGUL.search(c)]
    for comment in comments:
        if HANGUL.search(comment):
            continue
        stems, forms = _english_terms(comment)
        _count(stems, counts["en"])
        for stem, form in forms.items():
            written.setdefault(stem, Counter())[form] += 1
    if korean:
        for tokens in korean_analyser().tokenize(korean):
            _count(_korean_terms(tokens), counts["ko"])

    def shown(term: str) -> str:
        # An English stem is shown as the word most often written for it.
        return " ".join(
            written[w].most_common(1)[0][0] if w in written else w for w in term.split()
        )

    themes = [
        Theme(
            term=shown(term) if language == "en" else term, count=n, language=language
        )
        for language, counter in counts.items()
        for term, n in counter.items()
        # A phrase said once is no theme.
        if n > 1 or " " not in term
    ]
    themes.sort(key=lambda t: (-t.count, t.is_phrase, t.term))
    return themes[:limit]
