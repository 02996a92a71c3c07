"""
The survey kinds and their scales: the one place that knows that NPS runs 0–10,
that a CSAT of 4 is satisfied and that a CES of 3 was hard.

Every other module asks this one: the models' constraints, the answer page, the
emails, the metrics (which count in SQL with the same bounds) and the follow-up rule.
"""

from dataclasses import dataclass

from django.db import models
from django.db.models import Q
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SurveyKind(models.TextChoices):
    NPS = "nps", _("NPS (0–10)")
    CSAT = "csat", _("CSAT (1–5)")
    CES = "ces", _("CES (1–7)")
    CUSTOM = "custom", _("Custom (no headline score)")


class Tone(models.TextChoices):
    NEGATIVE = "negative", _("Negative")
    NEUTRAL = "neutral", _("Neutral")
    POSITIVE = "positive", _("Positive")


class Bucket(models.TextChoices):
    """Where a headline score falls; each kind uses three of these."""

    DETRACTOR = "detractor", _("Detractor")
    PASSIVE = "passive", _("Passive")
    PROMOTER = "promoter", _("Promoter")
    DISSATISFIED = "dissatisfied", _("Dissatisfied")
    NEUTRAL = "neutral", pgettext_lazy("score bucket", "Neutral")
    SATISFIED = "satisfied", _("Satisfied")
    HARD = "hard", _("Hard")
    EASY = "easy", _("Easy")


@dataclass(frozen=True)
class BucketRange:
    bucket: str
    tone: str
    low: int
    high: int


@dataclass(frozen=True)
class Kind:
    """A standard survey kind: its scale, its wording and its buckets."""

    low: int
    high: int
    # The standard question, with %(company)s; and the labels under the scale's ends.
    question: Promise
    label_low: Promise
    label_high: Promise
    buckets: tuple[BucketRange, BucketRange, BucketRange]  # negative, neutral, positive

    @property
    def negative(self) -> BucketRange:
        return self.buckets[0]

    @property
    def positive(self) -> BucketRange:
        return self.buckets[2]

    def bucket(self, score: int) -> BucketRange:
        """Returns the bucket of a score on this kind's scale."""
        for bucket in self.buckets:
            if bucket.low <= score <= bucket.high:
                return bucket
        raise ValueError(f"{score} is not on the scale {self.low}–{self.high}")


KINDS: dict[str, Kind] = {
    SurveyKind.NPS: Kind(
        low=0,
        high=10,
        question=_(
            "How likely are you to recommend %(company)s to a friend or colleague?"
        ),
        label_low=_("Not at all likely"),
        label_high=_("Extremely likely"),
        buckets=(
            BucketRange(Bucket.DETRACTOR, Tone.NEGATIVE, 0, 6),
            BucketRange(Bucket.PASSIVE, Tone.NEUTRAL, 7, 8),
            BucketRange(Bucket.PROMOTER, Tone.POSITIVE, 9, 10),
        ),
    ),
    SurveyKind.CSAT: Kind(
        low=1,
        high=5,
        question=_("How satisfied were you with your experience with %(company)s?"),
        label_low=_("Very dissatisfied"),
        label_high=_("Very satisfied"),
        buckets=(
            BucketRange(Bucket.DISSATISFIED, Tone.NEGATIVE, 1, 2),
            BucketRange(Bucket.NEUTRAL, Tone.NEUTRAL, 3, 3),
            BucketRange(Bucket.SATISFIED, Tone.POSITIVE, 4, 5),
        ),
    ),
    SurveyKind.CES: Kind(
        low=1,
        high=7,
        question=_(
            "How much do you agree with this statement: “%(company)s made it easy "
            "for me to handle my issue.”"
        ),
        label_low=_("Strongly disagree"),
        label_high=_("Strongly agree"),
        buckets=(
            BucketRange(Bucket.HARD, Tone.NEGATIVE, 1, 3),
            BucketRange(Bucket.NEUTRAL, Tone.NEUTRAL, 4, 4),
            BucketRange(Bucket.EASY, Tone.POSITIVE, 5, 7),
        ),
    ),
}

# Every score any scale allows; a custom score question stays within it too, so
# the widest row of buttons is eleven.
SCORE_MIN = min(kind.low for kind in KINDS.values())
SCORE_MAX = max(kind.high for kind in KINDS.values())

# The standard "why?" question that follows the score.
REASON_QUESTION = _("What is the main reason for your score?")


def kind_of(kind: str) -> Kind | None:
    """Returns the standard kind `kind`, or None for a custom survey."""
    return KINDS.get(kind)


def score_bucket(kind: str, score: int) -> BucketRange:
    """Returns the bucket of a headline score of a survey of `kind`."""
    return KINDS[kind].bucket(score)


def bucket_q(bucket: str, *, kind_field: str = "survey__kind", score_field="score"):
    """Returns the Q of the rows whose headline score falls in `bucket` (a Bucket),
    by each kind's ranges, in SQL: score_bucket's rule for a filter."""
    condition = Q(pk__in=[])
    for kind, spec in KINDS.items():
        for found in spec.buckets:
            if found.bucket == bucket:
                condition |= Q(
                    **{
                        kind_field: kind,
                        f"{score_field}__gte": found.low,
                        f"{score_field}__lte": found.high,
                    }
                )
    return condition


def is_negative(kind: str, score: int | None) -> bool:
    """True for a score that asks for a follow-up: NPS ≤ 6, CSAT ≤ 2, CES ≤ 3."""
    spec = KINDS.get(kind)
    return spec is not None and score is not None and score <= spec.negative.high
