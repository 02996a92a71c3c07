"""Stored JSON values (customer properties, segment conditions) and what jsonb
accepts."""

import json
import math
import sys

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.utils.translation import gettext_lazy as _

# How deeply a stored JSON value may nest.
JSON_MAX_DEPTH = 32


def _too_deep() -> str:
    """Returns the message for a value nested deeper than JSON_MAX_DEPTH."""
    return _("Nest values at most %(depth)d levels deep.") % {"depth": JSON_MAX_DEPTH}


def json_problem(value) -> str | None:
    """Returns why PostgreSQL's jsonb could not store value, or None if it can."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > JSON_MAX_DEPTH:
            return _too_deep()
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


def validate_json_list(value) -> None:
    """Raises ValidationError unless value is a JSON list the database can store."""
    if not isinstance(value, list):
        raise ValidationError(_("Expected a list, e.g. [ ]."), code="not_a_list")
    if problem := json_problem(value):
        raise ValidationError(problem, code="not_storable")


class JSONObjectFormField(forms.JSONField):
    """
    A form's box for a JSON object the database can store: empty or null means {}.

    Any text gives a value or a field error, never an exception, and the form can
    always be drawn again with what was typed.
    """

    empty = dict
    check = staticmethod(validate_json_object)

    def to_python(self, value):
        if self.disabled:
            return value
        if isinstance(value, str) and not value.strip():
            return self.empty()
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise ValidationError(_too_deep(), code="not_storable")
        except ValueError:
            # Not a JSONDecodeError (that is "invalid" already): an integer with more
            # digits than Python converts.
            raise ValidationError(
                _("Numbers must have at most %(digits)d digits."),
                code="not_storable",
                params={"digits": sys.get_int_max_str_digits()},
            )
        if converted is None:
            return self.empty()
        self.check(converted)
        return converted

    def bound_data(self, data, initial):
        """Returns the value to draw again: the text as typed unless it is storable."""
        if self.disabled or data is None:
            return super().bound_data(data, initial)
        try:
            value = json.loads(data, cls=self.decoder)
        except (RecursionError, ValueError):
            return InvalidJSONInput(data)
        if json_problem(value):
            return InvalidJSONInput(data)
        return value

    def prepare_value(self, value):
        text = super().prepare_value(value)
        if isinstance(value, InvalidJSONInput):
            return text
        try:
            text.encode()
        except UnicodeEncodeError:
            # A lone surrogate has no UTF-8 form: write it as a \u escape.
            return json.dumps(value, cls=self.encoder)
        return text


class JSONObjectField(models.JSONField):
    """A JSON object column whose form field is JSONObjectFormField."""

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": JSONObjectFormField, **kwargs})


class JSONListFormField(JSONObjectFormField):
    """JSONObjectFormField for a list: empty or null means []."""

    empty = list
    check = staticmethod(validate_json_list)


class JSONListField(models.JSONField):
    """A JSON list column whose form field is JSONListFormField."""

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": JSONListFormField, **kwargs})
