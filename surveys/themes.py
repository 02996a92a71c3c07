"""
Comment themes: the words customers use most, in English and Korean.

One place knows how a comment is cut into terms (English stop words and simple
lemmas, Korean morphemes), so that the themes shown and the `term` filter that
lists a theme's comments agree.
"""

import re

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
