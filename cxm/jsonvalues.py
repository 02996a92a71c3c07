"""Stored JSON values (customer properties, audiences) and what jsonb accepts."""

import math

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# How deeply a stored JSON value may nest.
JSON_MAX_DEPTH = 32


def json_problem(value) -> str | None:
    """Returns why PostgreSQL's jsonb could not store value, or None if it can."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return _("Nest values at most %(depth)d levels deep.") % {
                "depth": JSON_MAX_DEPTH
            }
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, float) and not math.isfinite(item):
            return _("Numbers must be finite.")
        elif isinstance(item, str) and (
            "\x00" in item or any("\ud800" <= c <= "\udfff" for c in item)
        ):
            return _("Text must not contain NUL or unpaired surrogate characters.")
    return None


# Codes other than "invalid": model fields swap an "invalid" message for their own.
def validate_json_object(value) -> None:
    """Raises ValidationError unless value is a JSON object the database can store."""
    if not isinstance(value, dict):
        raise ValidationError(
            _('Expected an object, e.g. {"plan": "pro"}.'), code="not_an_object"
        )
    if problem := json_problem(value):
        raise ValidationError(problem, code="not_storable")
