"""Survey metrics, counted by the database in one aggregate each."""

import math
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from .models import NPS_DETRACTOR_MAX, NPS_PROMOTER_MIN, Campaign, Response


@dataclass(frozen=True)
class Nps:
    promoters: int
    passives: int
    detractors: int
    responses: int

    @property
    def nps(self) -> float | None:
        """% promoters − % detractors, from −100 to 100; None without responses."""
        if not self.responses:
            return None
        return round(100 * (self.promoters - self.detractors) / self.responses, 1)

    @property
    def margin_of_error(self) -> float | None:
        """The NPS's margin of error at 95 %, in NPS points; None without responses."""
        n = self.responses
        if not n:
            return None
        p, d = self.promoters / n, self.detractors / n
        return round(1.96 * 100 * math.sqrt((p + d - (p - d) ** 2) / n), 1)

    def as_dict(self) -> dict:
        return {
            "nps": self.nps,
            "promoters": self.promoters,
            "passives": self.passives,
            "detractors": self.detractors,
            "responses": self.responses,
            "margin_of_error": self.margin_of_error,
        }


def nps_counts(prefix: str = "") -> dict:
    """Returns aggregate expressions of the NPS counts of field `prefix`score."""
    score = prefix + "score"
    return {
        "responses": Count(score),
        "promoters": Count(score, filter=Q((score + "__gte", NPS_PROMOTER_MIN))),
        "detractors": Count(score, filter=Q((score + "__lte", NPS_DETRACTOR_MAX))),
    }


def nps_from_row(row) -> Nps:
    """Returns the Nps of a row (dict or object) annotated with nps_counts()."""
    get = row.get if isinstance(row, dict) else lambda k: getattr(row, k)
    responses, promoters, detractors = (
        get("responses"),
        get("promoters"),
        get("detractors"),
    )
    return Nps(
        promoters=promoters,
        passives=responses - promoters - detractors,
        detractors=detractors,
        responses=responses,
    )


def nps(
    *, campaign: Campaign | int | None = None, responses: QuerySet | None = None
) -> Nps:
    """Returns the NPS of a campaign's responses, or of all (or the given) responses."""
    qs = Response.objects.all() if responses is None else responses
    if campaign is not None:
        qs = qs.filter(invitation__campaign=campaign)
    return nps_from_row(qs.aggregate(**nps_counts()))


def campaigns_with_nps(campaigns: QuerySet | None = None) -> QuerySet:
    """Returns campaigns annotated with their NPS counts and invitation counts."""
    qs = Campaign.objects.all() if campaigns is None else campaigns
    return qs.select_related("survey").annotate(
        invited=Count("invitations"),
        **nps_counts("invitations__response__"),
    )
