"""
Segments: named conditions on customers, the one way cxm says "who".

A segment is a list of conditions combined with all (and) or any (or). Each
condition is a small JSON object with a "type":

- field: a customer column: {"type": "field", "field": "locale", "op": "equals",
  "value": "ko"}
- property: a free property: {"type": "property", "name": "plan", "op": "one_of",
  "value": ["pro", "enterprise"]}; ops: equals, one_of, contains (text), gte, lte,
  between (numbers), is_set, is_not_set
- interaction: {"type": "interaction", "kind": "purchase", "within_days": 30},
  with "had": false for "had none"

Apps above this one add types of their own (a survey answer, "not surveyed in N
days") with register_condition(), so this module never imports them.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from cxm.jsonvalues import json_problem

from .models import INTERACTION_KIND, Match

# A segment is one query; SQLite refuses an expression tree deeper than ~1,000,
# and nobody reads a segment of more conditions than this.
MAX_CONDITIONS = 50
MAX_VALUES = 500  # of one_of
MAX_DAYS = 36_500
PROPERTY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ConditionType:
    """A kind of condition: how to check one as given, and the query it stands for."""

    name: str
    # Returns the condition cleaned, or raises ValidationError naming what is wrong.
    clean: Callable[[dict], dict]
    # Returns the condition on Customer; `now` anchors "in the last N days".
    q: Callable[[dict, datetime], Q]
    # The JSON Schemas of its valid forms (the API's schema offers one of them).
    schemas: Callable[[], list[dict]]


CONDITION_TYPES: dict[str, ConditionType] = {}


def register_condition(condition_type: ConditionType) -> None:
    """Adds a type of condition (apps above customers register theirs in ready())."""
    CONDITION_TYPES[condition_type.name] = condition_type


# JSON Schema pieces for the conditions' schemas.
TEXT_SCHEMA = {"type": "string", "pattern": r"^[^\x00]*$"}
SCALAR_SCHEMA = {"anyOf": [TEXT_SCHEMA, {"type": ["number", "boolean"]}]}
NUMBER_SCHEMA = {"type": "number"}
DAYS_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}
# PROPERTY_NAME without "__" (a lookup to Django).
PROPERTY_NAME_SCHEMA = {
    "type": "string",
    "pattern": "^[A-Za-z](?:[A-Za-z0-9-]|_[A-Za-z0-9-])*_?$",
    "maxLength": 64,
}
OP_VALUE_SCHEMAS = {
    "equals": SCALAR_SCHEMA,
    "one_of": {
        "type": "array",
        "items": SCALAR_SCHEMA,
        "minItems": 1,
        "maxItems": MAX_VALUES,
    },
    "contains": {**TEXT_SCHEMA, "minLength": 1},
    "gte": NUMBER_SCHEMA,
    "lte": NUMBER_SCHEMA,
    "between": {
        "type": "array",
        "items": NUMBER_SCHEMA,
        "minItems": 2,
        "maxItems": 2,
        "description": "[low, high], the low end first.",
    },
}


def condition_schema(type_name: str, properties: dict, optional=()) -> dict:
    """The JSON Schema of one form of a condition of type `type_name`."""
    return {
        "type": "object",
        "properties": {"type": {"const": type_name}, **properties},
        "required": ["type", *(k for k in properties if k not in optional)],
        "additionalProperties": False,
    }


def _op_schemas(type_name: str, subject: dict, ops) -> list[dict]:
    """One schema per op: the subject (field or name), the op and its value."""
    return [
        condition_schema(
            type_name,
            {
                **subject(op),
                "op": {"const": op},
                **({} if op in VALUELESS_OPS else {"value": OP_VALUE_SCHEMAS[op]}),
            },
        )
        for op in sorted(ops)
    ]


def check_keys(condition: dict, required: set[str], optional=frozenset()) -> None:
    """Raises ValidationError naming the keys a condition lacks or should not have."""
    missing = sorted(required - condition.keys())
    if missing:
        raise ValidationError(
            _("This condition needs %(keys)s."), params={"keys": ", ".join(missing)}
        )
    unknown = sorted(condition.keys() - required - optional - {"type"})
    if unknown:
        raise ValidationError(
            _("This condition does not take %(keys)s."),
            params={"keys": ", ".join(unknown)},
        )


def clean_days(value, key: str = "within_days") -> int:
    """A number of days, 1 to MAX_DAYS, or a ValidationError naming the key."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON's 30.0 is the integer 30
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (1 <= value <= MAX_DAYS)
    ):
        raise ValidationError(
            _("%(key)s must be a whole number of days from 1 to %(max)d."),
            params={"key": key, "max": MAX_DAYS},
        )
    return value


def _scalar(value, what) -> None:
    if isinstance(value, str | bool) or (
        isinstance(value, int | float) and not isinstance(value, bool)
    ):
        if problem := json_problem(value):
            raise ValidationError(problem)
        return
    raise ValidationError(
        _("%(what)s must be text, a number or true/false."), params={"what": what}
    )


def _number(value, what) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(_("%(what)s must be a number."), params={"what": what})
    if problem := json_problem(value):
        raise ValidationError(problem)


# field: the customer columns a segment may test, and the ops each allows.
FIELD_OPS = {
    "email": {"equals", "one_of", "contains"},
    "name": {"equals", "one_of", "contains", "is_set", "is_not_set"},
    "locale": {"equals", "one_of"},
    "external_id": {"equals", "one_of", "is_set", "is_not_set"},
}
PROPERTY_OPS = {
    "equals",
    "one_of",
    "contains",
    "gte",
    "lte",
    "between",
    "is_set",
    "is_not_set",
}
VALUELESS_OPS = {"is_set", "is_not_set"}


def _clean_op_value(condition: dict, ops: set[str]) -> dict:
    op = condition.get("op")
    if op not in ops:
        raise ValidationError(
            _("op must be one of %(ops)s."), params={"ops": ", ".join(sorted(ops))}
        )
    value = condition.get("value")
    if op in VALUELESS_OPS:
        if "value" in condition:
            raise ValidationError(_("%(op)s takes no value."), params={"op": op})
        return condition
    if "value" not in condition:
        raise ValidationError(_("%(op)s needs a value."), params={"op": op})
    if op == "equals":
        _scalar(value, _("The value"))
    elif op == "one_of":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_VALUES:
            raise ValidationError(
                _("one_of needs a list of 1 to %(max)d values."),
                params={"max": MAX_VALUES},
            )
        for item in value:
            _scalar(item, _("Each value"))
    elif op == "contains":
        if not isinstance(value, str) or not value:
            raise ValidationError(_("contains needs some text."))
    elif op in {"gte", "lte"}:
        _number(value, _("The value"))
    elif op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ValidationError(_("between needs two numbers: [low, high]."))
        for item in value:
            _number(item, _("Each end"))
        if value[0] > value[1]:
            raise ValidationError(_("between needs the low end first."))
    return condition


def _field_clean(condition: dict) -> dict:
    optional = set() if condition.get("op") in VALUELESS_OPS else {"value"}
    check_keys(condition, {"field", "op"}, optional)
    field = condition["field"]
    if field not in FIELD_OPS:
        raise ValidationError(
            _("field must be one of %(fields)s."),
            params={"fields": ", ".join(sorted(FIELD_OPS))},
        )
    return _clean_op_value(condition, FIELD_OPS[field])


def _text_q(column: str, op: str, value) -> Q:
    if op == "equals":
        lookup = "iexact" if column == "email" else "exact"
        return Q(**{f"{column}__{lookup}": value})
    if op == "one_of":
        if column == "email":
            condition = Q()
            for item in value:
                condition |= Q(email__iexact=item)
            return condition
        return Q(**{f"{column}__in": value})
    if op == "contains":
        return Q(**{f"{column}__icontains": value})
    if op == "is_set":
        return ~Q(**{column: ""})
    return Q(**{column: ""})  # is_not_set


def _field_schemas() -> list[dict]:
    ops = set().union(*FIELD_OPS.values())

    def subject(op):
        fields = sorted(f for f, allowed in FIELD_OPS.items() if op in allowed)
        return {"field": {"enum": fields}}

    return _op_schemas("field", subject, ops)


def _field_q(condition: dict, now: datetime) -> Q:
    return _text_q(condition["field"], condition["op"], condition.get("value"))


def _property_clean(condition: dict) -> dict:
    optional = set() if condition.get("op") in VALUELESS_OPS else {"value"}
    check_keys(condition, {"name", "op"}, optional)
    name = condition["name"]
    if not isinstance(name, str) or not PROPERTY_NAME.fullmatch(name) or "__" in name:
        raise ValidationError(
            _("%(name)r is not a property name: use letters, digits, - and _."),
            params={"name": name},
        )
    return _clean_op_value(condition, PROPERTY_OPS)


def _property_schemas() -> list[dict]:
    return _op_schemas(
        "property", lambda op: {"name": PROPERTY_NAME_SCHEMA}, PROPERTY_OPS
    )


def _property_equals(name: str, value) -> Q:
    if connection.vendor == "postgresql":
        # jsonb containment (@>), which the GIN index on properties serves.
        return Q(properties__contains={name: value})
    # __exact: a property named like a lookup ("contains", "isnull") is still a key.
    return Q(**{f"properties__{name}__exact": value})


class _IsNumber(models.Func):
    """Whether a customer's property holds a JSON number (not text, not absent)."""

    output_field = models.BooleanField()

    def __init__(self, name: str):
        super().__init__(models.F("properties"))
        self.name = name

    def as_postgresql(self, compiler, connection):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"jsonb_typeof({sql} -> %s) = 'number'", (*params, self.name)

    def as_sql(self, compiler, connection):  # SQLite
        sql, params = compiler.compile(self.source_expressions[0])
        path = '$."' + self.name + '"'  # PROPERTY_NAME has no quote to escape
        return f"json_type({sql}, %s) IN ('integer', 'real')", (*params, path)


def _property_number(name: str, lookup: str, value) -> Q:
    # JSON numbers only: jsonb orders every string below every number, so "lte"
    # would otherwise take in every customer whose value is text.
    return Q(_IsNumber(name)) & Q(**{f"properties__{name}__{lookup}": value})


def _property_q(condition: dict, now: datetime) -> Q:
    name, op, value = condition["name"], condition["op"], condition.get("value")
    if op == "equals":
        return _property_equals(name, value)
    if op == "one_of":
        result = Q()
        for item in value:
            result |= _property_equals(name, item)
        return result
    if op == "contains":
        return Q(**{f"properties__{name}__icontains": value})
    if op in {"gte", "lte"}:
        return _property_number(name, op, value)
    if op == "between":
        return _property_number(name, "gte", value[0]) & _property_number(
            name, "lte", value[1]
        )
    if op == "is_set":
        return Q(properties__has_key=name)
    return ~Q(properties__has_key=name)  # is_not_set


def _interaction_clean(condition: dict) -> dict:
    check_keys(condition, {"kind", "within_days"}, {"had"})
    kind = condition["kind"]
    if not isinstance(kind, str) or not INTERACTION_KIND.fullmatch(kind):
        raise ValidationError(
            _("%(kind)r is not an interaction kind."), params={"kind": kind}
        )
    condition["within_days"] = clean_days(condition["within_days"])
    if not isinstance(condition.get("had", True), bool):
        raise ValidationError(_("had must be true or false."))
    return condition


def _interaction_schemas() -> list[dict]:
    kind = {"type": "string", "pattern": INTERACTION_KIND.pattern}
    return [
        condition_schema(
            "interaction",
            {"kind": kind, "within_days": DAYS_SCHEMA, "had": {"type": "boolean"}},
            optional=["had"],
        )
    ]


def _interaction_q(condition: dict, now: datetime) -> Q:
    from .models import Interaction

    had = Exists(
        Interaction.objects.filter(
            customer=OuterRef("pk"),
            kind=condition["kind"],
            occurred_at__gte=now - timedelta(days=condition["within_days"]),
        )
    )
    return Q(had) if condition.get("had", True) else ~Q(had)


register_condition(ConditionType("field", _field_clean, _field_q, _field_schemas))
register_condition(
    ConditionType("property", _property_clean, _property_q, _property_schemas)
)
register_condition(
    ConditionType(
        "interaction", _interaction_clean, _interaction_q, _interaction_schemas
    )
)


def conditions_schema() -> dict:
    """The JSON Schema of a segment's conditions, from every registered type."""
    return {
        "type": "array",
        "maxItems": MAX_CONDITIONS,
        "items": {
            "oneOf": [
                schema
                for condition_type in CONDITION_TYPES.values()
                for schema in condition_type.schemas()
            ]
        },
    }


def validate_conditions(value) -> None:
    """Raises ValidationError unless value is a list of conditions cxm knows."""
    if not isinstance(value, list):
        raise ValidationError(_("The conditions must be a list."), code="not_a_list")
    if problem := json_problem(value):
        raise ValidationError(problem, code="not_storable")
    if len(value) > MAX_CONDITIONS:
        raise ValidationError(
            _("A segment may have at most %(max)d conditions."),
            params={"max": MAX_CONDITIONS},
        )
    errors = []
    for number, condition in enumerate(value, start=1):
        try:
            if not isinstance(condition, dict):
                raise ValidationError(_("A condition must be an object."))
            for key, item in condition.items():
                # Only a value may be a list; every other key is one plain word
                # or number (an object there would not even be a dict key).
                if key != "value" and not isinstance(item, str | int | float):
                    raise ValidationError(
                        _("%(key)s must be text or a number."), params={"key": key}
                    )
            name = condition.get("type")
            kind = CONDITION_TYPES.get(name) if isinstance(name, str) else None
            if kind is None:
                raise ValidationError(
                    _("type must be one of %(types)s."),
                    params={"types": ", ".join(sorted(CONDITION_TYPES))},
                )
            kind.clean(condition)
        except ValidationError as e:
            errors.extend(
                ValidationError(
                    _("Condition %(number)d: %(message)s"),
                    params={"number": number, "message": message},
                    code="bad_condition",
                )
                for message in e.messages
            )
    if errors:
        raise ValidationError(errors)


def conditions_q(conditions: list[dict], match: str, now: datetime) -> Q:
    """Returns the condition on Customer that a segment's conditions stand for."""
    parts = [CONDITION_TYPES[c["type"]].q(c, now) for c in conditions]
    if not parts:
        return Q()
    combined = parts[0]
    for part in parts[1:]:
        combined = combined | part if match == Match.ANY else combined & part
    return combined
