"""What every app's REST API shares: the error shape, the JSON parser and fields."""

import math

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, parsers, serializers
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

# How deeply a JSON value we store (customer properties, an audience) may nest.
JSON_MAX_DEPTH = 32


def validation_error_detail(error: DjangoValidationError) -> dict:
    """
    Returns the 400 body of a Django ValidationError: field errors by field name,
    plain messages under "detail".
    """
    detail = get_error_detail(error)
    if isinstance(detail, dict):
        return {
            (api_settings.NON_FIELD_ERRORS_KEY if key == NON_FIELD_ERRORS else key): (
                messages
            )
            for key, messages in detail.items()
        }
    return {"detail": " ".join(str(message) for message in detail)}


def exception_handler(exc, context):
    """DRF's handler, plus a 400 for the Django ValidationErrors services raise."""
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(validation_error_detail(exc))
    return drf_exception_handler(exc, context)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a 400 rather than a 500 for absurdly nested input."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply."))


# The API reads JSON only: one way in keeps validation (and the schema) simple.
PARSER_CLASSES = [JSONParser]


def _json_problem(value) -> str | None:
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


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object that the database can store as it is."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                _('Expected an object, e.g. {"plan": "pro"}.'), code="not_an_object"
            )
        if problem := _json_problem(data):
            raise serializers.ValidationError(problem)
        return super().to_internal_value(data)


class DetailSerializer(serializers.Serializer):
    """The body of an error that concerns no single field."""

    detail = serializers.CharField()
