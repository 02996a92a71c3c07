"""
What every app's REST API shares: the error shapes and statuses, the JSON parser,
fields that take only the JSON types the schema gives, and the schema class that
documents every operation's errors.
"""

import re
from datetime import UTC, date

from django.core.exceptions import NON_FIELD_ERRORS, ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField, ModelChoiceField
from drf_spectacular.extensions import (
    OpenApiSerializerExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.fields import empty, get_error_detail
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from cxm.jsonvalues import validate_json_object

# The code of a ValidationError that says the request clashes with the current state
# of what it changes (a campaign already sent, an email another customer has): the
# request itself is well formed, so the API answers 409, not 400.
CONFLICT = "conflict"
# Codes of a ValidationError that says an id the request gives names nothing: 404.
NOT_FOUND_CODES = {"does_not_exist", "not_found"}


def name_free_check(queryset, *, instance, name: str, message: str) -> str:
    """
    Returns `name` if no row of `queryset` but `instance` has it, else raises a
    409 with `message` (a unique name, checked before the database refuses it).
    """
    if instance is not None:
        queryset = queryset.exclude(pk=instance.pk)
    if queryset.filter(name=name).exists():
        raise serializers.ValidationError(message, CONFLICT)
    return name


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


def _codes(detail) -> set:
    """The codes of every message in an error's detail, however nested."""
    if isinstance(detail, dict):
        return set().union(*(_codes(value) for value in detail.values()))
    if isinstance(detail, list):
        return set().union(*(_codes(value) for value in detail))
    return {getattr(detail, "code", None)}


def _messages(detail) -> list[str]:
    """The messages of an error's detail, however nested, in order."""
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


def error_codes(error: DjangoValidationError) -> set:
    """The codes of every message of a Django ValidationError."""
    return _codes(get_error_detail(error))


def exception_handler(exc, context):
    """
    DRF's handler, plus a 400 for the Django ValidationErrors services raise; a
    validation error all of whose messages are conflicts is a 409, one all of whose
    messages say an id names nothing a 404.
    """
    if isinstance(exc, DjangoValidationError):
        codes = error_codes(exc)
        exc = exceptions.ValidationError(validation_error_detail(exc))
    elif isinstance(exc, exceptions.ValidationError):
        codes = _codes(exc.detail)
    else:
        return drf_exception_handler(exc, context)
    if codes and codes <= NOT_FOUND_CODES:
        exc = exceptions.NotFound(" ".join(_messages(exc.detail)))
    elif codes and codes <= NOT_FOUND_CODES | {CONFLICT}:
        exc.status_code = status.HTTP_409_CONFLICT
    return drf_exception_handler(exc, context)


@csrf_exempt  # nothing to protect: it changes nothing
def not_found(request, *args, **kwargs):
    """The API's 404 for a path no route takes, in JSON as every other answer."""
    return JsonResponse({"detail": str(exceptions.NotFound.default_detail)}, status=404)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a 400 rather than a 500 for absurdly nested input."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_("JSON parse error - nested too deeply."))


# The API reads JSON only: one way in keeps validation (and the schema) simple.
PARSER_CLASSES = [JSONParser]


# What str.strip() (and so DRF's CharField) takes for white space, spelled out: a
# regex's \s differs between Python and the ECMA regexes of JSON Schema.
WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
    r"\u3000"
)
# Text without NUL (which PostgreSQL cannot store, and DRF refuses): the pattern of
# every string the API reads, and of every key of a JSON object it stores.
TEXT_PATTERN = r"^[^\x00]*$"
# The same, with something besides white space: a string that may not be blank.
NOT_BLANK_PATTERN = rf"^[^\x00]*[^\x00{WHITESPACE}][^\x00]*$"
JSON_VALUE = "JSONValue"
# An address Django's EmailValidator takes, in ASCII (the schema's format, email, has
# no room for an IDN either): JSON Schema's format also takes "a@b.c" or "a@b.c0",
# which Django refuses for their top-level domain.
_ATOM = r"[-!#$%&'*+/=?^_`{|}~0-9A-Za-z]+"
_QUOTED = (
    r'"(?:[\x01-\x08\x0b\x0c\x0e-\x1f!#-\[\]-\x7f]|\\[\x01-\x09\x0b\x0c\x0e-\x7f])*"'
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z][A-Za-z-]{0,61}[A-Za-z]|[Xx][Nn]--[A-Za-z0-9]{1,59})"
EMAIL_PATTERN = (
    rf"^(?:{_ATOM}(?:\.{_ATOM})*|{_QUOTED})@{_LABEL}(?:\.{_LABEL})*\.{_TLD}$"
)


def _json_value_component() -> ResolvedComponent:
    """Any JSON value the database can store (see cxm.jsonvalues.json_problem)."""
    ref = {"$ref": f"#/components/schemas/{JSON_VALUE}"}
    return ResolvedComponent(
        name=JSON_VALUE,
        type=ResolvedComponent.SCHEMA,
        object=JSON_VALUE,
        schema={
            "description": "Any JSON value; text without NUL characters.",
            "anyOf": [
                {"type": "string", "pattern": TEXT_PATTERN},
                {"type": ["number", "boolean", "null"]},
                {"type": "array", "items": ref},
                {
                    "type": "object",
                    "propertyNames": {"pattern": TEXT_PATTERN},
                    "additionalProperties": ref,
                },
            ],
        },
    )


class JSONObjectField(serializers.JSONField):
    """A JSON object that the database can store as it is."""

    def to_internal_value(self, data):
        try:
            validate_json_object(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages, code=error.code)
        return super().to_internal_value(data)


class JSONObjectFieldExtension(OpenApiSerializerFieldExtension):
    target_class = JSONObjectField

    def map_serializer_field(self, auto_schema, direction):
        component = _json_value_component()
        auto_schema.registry.register_on_missing(component)
        return {
            "type": "object",
            "propertyNames": {"pattern": TEXT_PATTERN},
            "additionalProperties": component.ref,
        }


class StrictCharField(serializers.CharField):
    """
    DRF's, refusing what is not a string (DRF makes 12 "12"), and counting
    max_length on the text as sent, before white space is trimmed, as the schema's
    maxLength does.
    """

    def run_validation(self, data=empty):
        if data is not empty and data is not None and not isinstance(data, str):
            self.fail("invalid")
        if isinstance(data, str) and self.max_length and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().run_validation(data)


class StrictEmailField(StrictCharField, serializers.EmailField):
    """An email address as sent: the schema's format has no room for white space."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)


def _whole(data) -> int | None:
    """A JSON integer as an int: 12, or 12.0 (JSON Schema's integer too), not "12"."""
    if isinstance(data, int) and not isinstance(data, bool):
        return data
    if isinstance(data, float) and data.is_integer():
        return int(data)
    return None


class StrictIntegerField(serializers.IntegerField):
    """DRF's, refusing what is not a JSON integer (DRF takes "12")."""

    def to_internal_value(self, data):
        if _whole(data) is None:
            self.fail("invalid")
        return super().to_internal_value(_whole(data))


class QueryIntegerField(serializers.IntegerField):
    """An integer in a query, spelled as the schema says: digits, and a minus sign if
    negative (DRF's also reads "1.0", " 1" and "1_0")."""

    def to_internal_value(self, data):
        if not (isinstance(data, str) and re.fullmatch(r"-?[0-9]+", data, re.ASCII)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """DRF's, refusing what is not true or false (DRF takes "yes", 1, "on" …)."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class PrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """
    DRF's, taking only whole numbers (the database makes 2.7 a 2, and the schema
    says integer); an id that names nothing is a 404 when nothing else is wrong.
    """

    default_error_messages = {"does_not_exist": _("There is no {name} {pk_value}.")}

    def to_internal_value(self, data):
        if _whole(data) is None:
            self.fail("incorrect_type", data_type=type(data).__name__)
        data = _whole(data)
        queryset = self.get_queryset()
        try:
            return queryset.get(pk=data)
        except ObjectDoesNotExist:
            self.fail(
                "does_not_exist",
                name=queryset.model._meta.verbose_name,
                pk_value=data,
            )


# The days a date-time may not fall on as written: an offset of up to ±23:59 could
# take it out of the years Python holds, and showing it in a time zone could too.
EDGE_DAYS = {date(1, 1, 1), date(1, 1, 2), date(9999, 12, 30), date(9999, 12, 31)}
# RFC 3339, as the schema's date-time format says (Python reads more: "2024-01-01").
RFC_3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
DATE_TIME_PATTERN = r"^(?!0001-01-0[12]|9999-12-3[01])"


def _rfc_3339(value):
    """Returns value for Django's parser, or raises ValidationError unless it is
    an RFC 3339 date-time on a day that EDGE_DAYS leaves."""
    if not (isinstance(value, str) and RFC_3339.fullmatch(value)):
        raise DjangoValidationError(
            _("Give a date and time such as 2024-05-01T09:30:00Z."), code="invalid"
        )
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:  # 2024-13-45: the right shape, no such day
        raise DjangoValidationError(_("This date does not exist."), code="invalid")
    if day in EDGE_DAYS:
        raise DjangoValidationError(_("This date is out of range."), code="invalid")
    return value.upper()


class DateTimeField(serializers.DateTimeField):
    """DRF's, for RFC 3339 text only, in UTC: any offset a client sends is one the
    database can store."""

    def to_internal_value(self, value):
        try:
            value = _rfc_3339(value)
        except DjangoValidationError as e:
            raise serializers.ValidationError(e.messages)
        return super().to_internal_value(value).astimezone(UTC)


class IsoDateTimeFormField(IsoDateTimeField):
    def to_python(self, value):
        if value in self.empty_values:
            return None
        return super().to_python(_rfc_3339(value)).astimezone(UTC)


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    """django-filter's ISO 8601 filter, as DateTimeField reads it."""

    field_class = IsoDateTimeFormField


class ReferenceField(ModelChoiceField):
    """An id in a query: a 400 unless a whole number, a 404 if it names nothing."""

    default_error_messages = {"no_such": _("There is no %(model)s %(value)s.")}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        params = {"model": self.queryset.model._meta.verbose_name, "value": value}
        if not re.fullmatch(r"-?[0-9]+", value, re.ASCII):
            raise DjangoValidationError(
                self.error_messages["no_such"], code="invalid_choice", params=params
            )
        try:
            return self.queryset.get(pk=int(value))
        except self.queryset.model.DoesNotExist:
            raise exceptions.NotFound(self.error_messages["no_such"] % params)


class ReferenceFilter(filters.ModelChoiceFilter):
    """?<name>=<id> of an object that must exist (see ReferenceField)."""

    field_class = ReferenceField


class FilterSet(filters.FilterSet):
    """django-filter's, filtering by foreign keys with ReferenceFilter."""

    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {
            "filter_class": ReferenceFilter,
            "extra": lambda f: {"queryset": f.remote_field.model._default_manager},
        },
    }


class ModelSerializer(serializers.ModelSerializer):
    """DRF's, with the strict fields above for the model's fields."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.BooleanField: StrictBooleanField,
        models.CharField: StrictCharField,
        models.DateTimeField: DateTimeField,
        models.EmailField: StrictEmailField,
        models.IntegerField: StrictIntegerField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.SmallIntegerField: StrictIntegerField,
        models.TextField: StrictCharField,
    }
    serializer_related_field = PrimaryKeyRelatedField


class DetailSerializer(serializers.Serializer):
    """The body of an error that concerns no single field."""

    detail = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The body of a 400 or a 409 (see ErrorSerializerExtension)."""


class ErrorSerializerExtension(OpenApiSerializerExtension):
    target_class = ErrorSerializer

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "description": (
                "The messages of each field by field name, nested as the request "
                "is; those of the whole request under non_field_errors. Or detail."
            ),
            "properties": {
                "detail": {"type": "string"},
                api_settings.NON_FIELD_ERRORS_KEY: {
                    "type": "array",
                    "items": {"type": "string"},
                },
            },
            "additionalProperties": {"type": ["array", "object"]},
        }


def _has_references(serializer) -> bool:
    """Whether a request serializer takes an id of another object, however nested."""
    if isinstance(serializer, serializers.ListSerializer):
        return _has_references(serializer.child)
    if isinstance(serializer, serializers.ManyRelatedField):
        return True
    if isinstance(serializer, serializers.RelatedField):
        return True
    if isinstance(serializer, serializers.Serializer):
        return any(
            _has_references(field)
            for field in serializer.fields.values()
            if not field.read_only
        )
    return False


class AutoSchema(SpectacularAutoSchema):
    """
    drf-spectacular's, documenting the errors every operation may answer, the
    patterns of the text it reads, and that an empty optional query parameter is
    the same as none.
    """

    def _map_basic_serializer(self, serializer, direction):
        """
        Adds the pattern of each string a request serializer reads (spectacular adds
        the field's validators after mapping it, so here), and the serializer's
        `request_schema`: what its validation says beyond its fields' own.
        """
        schema = super()._map_basic_serializer(serializer, direction)
        for name, field in serializer.fields.items():
            prop = schema["properties"].get(name, {})
            if isinstance(field, serializers.EmailField):
                # The pattern, not the format: validators of the format disagree on
                # what an address is (quoted local parts, IDN top-level domains).
                prop.pop("format", None)
                prop["pattern"] = EMAIL_PATTERN
        if direction != "request":
            return schema
        for name, field in serializer.fields.items():
            prop = schema["properties"].get(name, {})
            if "string" not in prop.get("type", ()) or "pattern" in prop:
                continue  # not a plain string, or one that has its pattern
            if isinstance(field, serializers.CharField):
                blank = field.allow_blank or not field.trim_whitespace
                prop["pattern"] = TEXT_PATTERN if blank else NOT_BLANK_PATTERN
            elif isinstance(field, serializers.DateTimeField):
                prop["pattern"] = DATE_TIME_PATTERN
        for key, value in getattr(serializer, "request_schema", {}).items():
            if key == "properties":
                for name, more in value.items():
                    schema["properties"][name] = {**schema["properties"][name], **more}
            else:
                schema[key] = value
        return schema

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        # A serializer whose request_schema asks for some field (anyOf required)
        # says body_required: spectacular counts only its required fields.
        if body and getattr(self.get_request_serializer(), "body_required", False):
            body["required"] = True
        return body

    def get_operation(self, *args, **kwargs):
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        query = []
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "query":
                continue
            query.append(parameter["name"])
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and not (
                {"enum", "pattern", "format"} & schema.keys()
            ):
                schema["pattern"] = TEXT_PATTERN
            if schema.get("format") == "date-time":
                schema.setdefault("pattern", DATE_TIME_PATTERN)
            if not parameter.get("required"):
                # django-filter and DRF take ?a= as no a (an HTML form sends it).
                parameter["allowEmptyValue"] = True
        errors = self._error_responses(operation, query)
        responses = {**errors, **operation["responses"]}
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _response(self, code: str, serializer, description: str) -> dict:
        return {
            **self._get_response_for_code(serializer, code),
            "description": description,
        }

    def _error_responses(self, operation: dict, query: list[str]) -> dict:
        body = "requestBody" in operation
        paged = bool({"page", "cursor"} & set(query))
        path = any(p["in"] == "path" for p in operation.get("parameters", []))
        errors = {}
        if body or set(query) - {"page"}:
            errors["400"] = self._response(
                "400",
                ErrorSerializer,
                "The request does not validate (a body, or a query parameter).",
            )
        errors["401"] = self._response(
            "401",
            DetailSerializer,
            "No credentials, or credentials that are not valid.",
        )
        errors["403"] = self._response(
            "403", DetailSerializer, "This account may not do this."
        )
        if path or paged or self._request_has_references():
            errors["404"] = self._response(
                "404",
                DetailSerializer,
                "No such object: of the path, a page past the last, or an id that "
                "the request gives.",
            )
        if body:
            errors["415"] = self._response(
                "415", DetailSerializer, "The body is not application/json."
            )
        errors["429"] = {
            **self._response(
                "429",
                DetailSerializer,
                "Too many requests from this user, or too many wrong tokens from "
                "this address (cxm.throttling). Retry after the seconds Retry-After "
                "gives.",
            ),
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer"},
                }
            },
        }
        # Answered by the web server in front, before cxm: no body to document.
        errors["414"] = {
            "description": (
                "The address is longer than the web server takes (gunicorn: a "
                "request line of 4,094 bytes)."
            )
        }
        return errors

    def _request_has_references(self) -> bool:
        if self.method not in ("POST", "PUT", "PATCH"):
            return False
        serializer = self.get_request_serializer()
        if isinstance(serializer, type):
            serializer = serializer()
        return _has_references(serializer)
