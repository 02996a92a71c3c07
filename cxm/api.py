"""What every app's REST API shares: the error shape, the JSON parser and fields."""

from datetime import UTC

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, parsers, serializers
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from cxm.jsonvalues import validate_json_object


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


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object that the database can store as it is."""

    def to_internal_value(self, data):
        try:
            validate_json_object(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages, code=error.code)
        return super().to_internal_value(data)


class PrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """DRF's, refusing ids that are not whole numbers (the database makes 2.7 a 2)."""

    def to_internal_value(self, data):
        whole = isinstance(data, int) and not isinstance(data, bool)
        digits = isinstance(data, str) and data.isascii() and data.isdigit()
        if not (whole or digits):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


def _in_utc(value):
    """An aware datetime moved to UTC (PostgreSQL refuses offsets beyond ±15:59), or
    a ValidationError for one that UTC cannot hold (year 0)."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise DjangoValidationError(_("This date is out of range."), code="invalid")


class DateTimeField(serializers.DateTimeField):
    """DRF's, in UTC: any offset a client sends is one the database can store."""

    def to_internal_value(self, value):
        try:
            return _in_utc(super().to_internal_value(value))
        except DjangoValidationError as e:
            raise serializers.ValidationError(e.messages)


class IsoDateTimeFormField(IsoDateTimeField):
    def to_python(self, value):
        return _in_utc(super().to_python(value))


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    """django-filter's ISO 8601 filter, in UTC (see DateTimeField)."""

    field_class = IsoDateTimeFormField


class DetailSerializer(serializers.Serializer):
    """The body of an error that concerns no single field."""

    detail = serializers.CharField()
