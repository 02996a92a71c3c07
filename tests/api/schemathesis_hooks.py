"""
Schemathesis hooks for cxm's API: the rules of the API that its schema (JSON Schema
2020-12) cannot state, so generated requests keep to them. Loaded by
tests/api/test_schema.py, and by the command line:

    SCHEMATHESIS_HOOKS=tests/api/schemathesis_hooks.py schemathesis run ...
"""

import os
import re
from datetime import date, datetime, timedelta

import schemathesis

# The ways a request names the customer of an interaction; exactly one is given.
CUSTOMER_REFERENCES = ("customer", "customer_email", "customer_external_id")
# What each schedule of a campaign needs besides (surveys.models.schedule_problems).
SCHEDULE_NEEDS = {
    "at": ["starts_at"],
    "spread": ["window_days"],
    "triggered": ["trigger_kind", "trigger_delay_hours"],
    "recurring": ["recur_every_days"],
}
INTERACTION_KIND = re.compile(r"[a-z][a-z0-9_.-]{0,63}")


def repeats_a_choice_value(body) -> bool:
    """
    Whether a survey's question offers one choice value twice. JSON Schema can ask
    for unique items, not for items unique by one of their properties.
    """
    questions = body.get("questions") if isinstance(body, dict) else None
    for question in questions if isinstance(questions, list) else []:
        choices = question.get("choices") if isinstance(question, dict) else None
        values = [
            choice.get("value")
            for choice in (choices if isinstance(choices, list) else [])
            if isinstance(choice, dict) and isinstance(choice.get("value"), str)
        ]
        if len(values) != len(set(values)):
            return True
    return False


def reverses_a_range(body) -> bool:
    """Whether a segment's "between" condition puts its high end first."""
    conditions = body.get("conditions") if isinstance(body, dict) else None
    for condition in conditions if isinstance(conditions, list) else []:
        value = condition.get("value") if isinstance(condition, dict) else None
        if (
            isinstance(condition, dict)
            and condition.get("op") == "between"
            and isinstance(value, list)
            and len(value) == 2
            and all(isinstance(v, int | float) for v in value)
            and value[0] > value[1]
        ):
            return True
    return False


def breaks_a_schedule_rule(path: str, body) -> bool:
    """
    Whether a campaign's schedule misses what its kind needs, or its window closes
    before it opens, or it names a weekday twice: rules between fields. (The
    campaign the API is tested on has no schedule, so a PATCH gets the same.)
    """
    if not path.startswith("/api/campaigns/") or not isinstance(body, dict):
        return False
    kind = body.get("schedule", "now")
    if not isinstance(kind, str):
        return False
    if any(body.get(name) is None for name in SCHEDULE_NEEDS.get(kind, [])):
        return True
    if kind == "triggered" and not (
        isinstance(body["trigger_kind"], str)
        and INTERACTION_KIND.fullmatch(body["trigger_kind"])
    ):
        return True
    if kind == "spread":
        opens, closes = body.get("window_start_hour"), body.get("window_end_hour")
        if (opens is None) != (closes is None):
            return True
        numbers = all(isinstance(n, int | float) for n in (opens, closes))
        if opens is not None and numbers and opens >= closes:
            return True
        weekdays = body.get("window_weekdays")
        if isinstance(weekdays, list) and len(set(map(repr, weekdays))) != len(
            weekdays
        ):
            return True
    return False


def _moment(value):
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", ""))
    except (AttributeError, TypeError, ValueError):
        return None


def breaks_a_metrics_rule(path: str, query) -> bool:
    """
    Whether a trend or comparison names a campaign and a survey, splits by segment
    while keeping one, or ends a period before it starts: rules between parameters.
    """
    if not path.startswith("/api/metrics/") or not isinstance(query, dict):
        return False
    if "campaign" in query and "survey" in query:
        return True
    if query.get("by") == "segment" and "segment" in query:
        return True
    for since, until in (
        ("since", "until"),
        ("a_since", "a_until"),
        ("b_since", "b_until"),
    ):
        start, end = _moment(query.get(since)), _moment(query.get(until))
        try:
            if start is not None and end is not None and start >= end:
                return True
        except TypeError:  # one naive, one aware: not a valid pair either way
            return True
    return False


def breaks_a_period_rule(path: str, query) -> bool:
    """
    Whether a journey map's period ends before it starts or runs past 3660 days
    (journeys.forms: until defaults to today, since to 89 days before until).
    """
    if not path.endswith("/map/") or not isinstance(query, dict):
        return False
    try:
        until = (
            date.fromisoformat(query["until"]) if query.get("until") else date.today()
        )
        since = (
            date.fromisoformat(query["since"])
            if query.get("since")
            else until - timedelta(days=89)
        )
    except (TypeError, ValueError, OverflowError):
        return False
    return since > until or (until - since).days >= 3660


@schemathesis.hook
def filter_case(context, case):
    return not (
        repeats_a_choice_value(case.body)
        or reverses_a_range(case.body)
        or breaks_a_schedule_rule(case.path, case.body)
        or breaks_a_metrics_rule(case.path, case.query)
        or breaks_a_period_rule(case.path, case.query)
    )


@schemathesis.hook
def before_call(context, case, kwargs):
    """
    A well-formed interaction names one customer who exists (which customers exist
    is no schema's to say): the seeded one (CXM_SCHEMA_CUSTOMER, set by the test).
    A timeline's cursor is one the API handed out, which no schema can generate:
    well-formed requests go without.
    """
    if (
        case.path == "/api/customers/{id}/timeline/"
        and isinstance(case.query, dict)
        and is_positive(case)
    ):
        case.query.pop("cursor", None)
    customer = os.environ.get("CXM_SCHEMA_CUSTOMER")
    if (
        customer
        and case.method.upper() == "POST"
        and case.path == "/api/interactions/"
        and isinstance(case.body, dict)
        and is_positive(case)
    ):
        for name in CUSTOMER_REFERENCES:
            case.body.pop(name, None)
        case.body["customer"] = int(customer)


def is_positive(case) -> bool:
    """
    Whether every part of a case is meant to be valid. The coverage phase makes
    negative cases whose generation mode still says positive (a valid object where
    the schema wants another type): their components say which part is negative.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return False
    components = getattr(meta, "components", None) or {}
    return not any(c.mode.is_negative for c in components.values())
