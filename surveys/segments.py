"""The conditions surveys add to segments: what customers answered, and when
they were last surveyed (registered with the customers app in apps.ready())."""

from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from cxm.customers.segments import (
    DAYS_SCHEMA,
    ConditionType,
    check_keys,
    clean_days,
    condition_schema,
    register_condition,
)

from .kinds import KINDS


def _answered_clean(condition: dict) -> dict:
    check_keys(condition, {"survey_kind", "within_days"}, {"bucket"})
    kind = KINDS.get(condition.get("survey_kind"))
    if kind is None:
        raise ValidationError(
            _("survey_kind must be one of %(kinds)s."),
            params={"kinds": ", ".join(KINDS)},
        )
    if "bucket" in condition:
        buckets = [b.bucket for b in kind.buckets]
        if condition["bucket"] not in buckets:
            raise ValidationError(
                _("bucket must be one of %(buckets)s."),
                params={"buckets": ", ".join(buckets)},
            )
    condition["within_days"] = clean_days(condition["within_days"])
    return condition


def _answered_q(condition: dict, now: datetime) -> Q:
    from .models import Response

    responses = Response.objects.filter(
        customer=OuterRef("pk"),
        survey__kind=condition["survey_kind"],
        created_at__gte=now - timedelta(days=condition["within_days"]),
    )
    if "bucket" in condition:
        # The bucket's bounds from the one place that knows them (kinds.py).
        bucket = next(
            b
            for b in KINDS[condition["survey_kind"]].buckets
            if b.bucket == condition["bucket"]
        )
        responses = responses.filter(score__gte=bucket.low, score__lte=bucket.high)
    return Q(Exists(responses))


def _answered_schemas() -> list[dict]:
    return [
        condition_schema(
            "answered",
            {
                "survey_kind": {"const": name},
                "bucket": {"enum": [b.bucket for b in kind.buckets]},
                "within_days": DAYS_SCHEMA,
            },
            optional=["bucket"],
        )
        for name, kind in KINDS.items()
    ]


def _not_surveyed_clean(condition: dict) -> dict:
    check_keys(condition, {"days"})
    condition["days"] = clean_days(condition["days"], "days")
    return condition


def _not_surveyed_schemas() -> list[dict]:
    return [condition_schema("not_surveyed", {"days": DAYS_SCHEMA})]


def _not_surveyed_q(condition: dict, now: datetime) -> Q:
    from .models import Invitation

    return ~Q(
        Exists(
            Invitation.objects.filter(
                customer=OuterRef("pk"),
                sent_at__gte=now - timedelta(days=condition["days"]),
            )
        )
    )


def register() -> None:
    register_condition(
        ConditionType("answered", _answered_clean, _answered_q, _answered_schemas)
    )
    register_condition(
        ConditionType(
            "not_surveyed",
            _not_surveyed_clean,
            _not_surveyed_q,
            _not_surveyed_schemas,
        )
    )
