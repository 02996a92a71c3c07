import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from .csvfiles import CSVLineError, property_value
from .models import Customer, Interaction, Segment
from .signals import interaction_recorded

# The code of an error about the current state, not the request (the API's 409).
CONFLICT = "conflict"

# The field each unique constraint of Customer guards, to name it in an error.
CUSTOMER_UNIQUE_FIELDS = {
    "customer_email_unique_ci": "email",
    "customer_external_id_unique": "external_id",
}
# What customer_create and customer_update write; the rest is kept by its own
# service (customer_unsubscribe, customer_mark_bounced) or by the database.
CUSTOMER_FIELDS = ("email", "name", "locale", "external_id", "properties")


def _customer_constraints() -> dict:
    return {
        constraint.name: constraint
        for constraint in Customer._meta.constraints
        if constraint.name in CUSTOMER_UNIQUE_FIELDS
    }


def customer_check_unique(*, customer: Customer) -> None:
    """
    Raises a conflict ValidationError, by field and with the constraint's message,
    if another customer has this customer's email (in any case) or external id.
    """
    errors = {}
    for name, constraint in _customer_constraints().items():
        try:
            constraint.validate(Customer, customer)
        except ValidationError:
            field = CUSTOMER_UNIQUE_FIELDS[name]
            errors[field] = ValidationError(
                constraint.get_violation_error_message(), code=CONFLICT
            )
    if errors:
        raise ValidationError(errors)


def customer_clean(*, customer: Customer) -> None:
    """
    Raises ValidationError unless the customer may be saved as it is: the model's
    field validators, then (when those pass) its unique constraints as conflicts.
    """
    customer.full_clean(validate_constraints=False)
    customer_check_unique(customer=customer)


def customer_conflict(error: IntegrityError) -> ValidationError | None:
    """The conflict a unique constraint's IntegrityError stands for, if it is one."""
    constraints = _customer_constraints()
    for name, field in CUSTOMER_UNIQUE_FIELDS.items():
        if name in str(error):
            message = constraints[name].get_violation_error_message()
            return ValidationError({field: ValidationError(message, code=CONFLICT)})
    return None


def _customer_save(customer: Customer, *, fields=None) -> Customer:
    customer_clean(customer=customer)
    # Two writers with one email can both pass the check; the constraint stops
    # the second, which gets the same error as if the check had.
    try:
        with transaction.atomic():
            if fields is None:
                customer.save()
            else:
                # Only what changed: an unsubscribe landing meanwhile is kept.
                customer.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as e:
        if conflict := customer_conflict(e):
            raise conflict from None
        raise
    return customer


def customer_create(
    *,
    email: str,
    name: str = "",
    locale: str = Customer._meta.get_field("locale").default,
    external_id: str = "",
    properties: dict | None = None,
) -> Customer:
    """
    Creates a customer; raises ValidationError with the model's messages if a
    field is not valid, or with code "conflict" if another customer has the email
    (in any case) or the external id.
    """
    return _customer_save(
        Customer(
            email=email,
            name=name,
            locale=locale,
            external_id=external_id,
            properties={} if properties is None else properties,
        )
    )


def customer_update(*, customer: Customer, **fields) -> Customer:
    """
    Changes the given fields (of CUSTOMER_FIELDS) of a customer, validated as
    customer_create validates; nothing is saved if one is not valid.
    """
    unknown = set(fields) - set(CUSTOMER_FIELDS)
    if unknown:
        raise TypeError(f"customer_update() cannot change {sorted(unknown)}")
    before = {name: getattr(customer, name) for name in fields}
    for name, value in fields.items():
        setattr(customer, name, value)
    try:
        return _customer_save(customer, fields=list(fields))
    except ValidationError:
        # The caller's object is left as it was, not with values never saved.
        for name, value in before.items():
            setattr(customer, name, value)
        raise


def customer_unsubscribe(*, customer: Customer) -> Customer:
    """Marks the customer unsubscribed (once; the first time is kept)."""
    with transaction.atomic():
        Customer.objects.filter(pk=customer.pk, unsubscribed_at__isnull=True).update(
            unsubscribed_at=timezone.now()
        )
    customer.refresh_from_db(fields=["unsubscribed_at"])
    return customer


def customer_mark_bounced(*, customer_id: int) -> None:
    """Marks the customer's address as bouncing, so no campaign emails it again."""
    Customer.objects.filter(pk=customer_id, bounced_at__isnull=True).update(
        bounced_at=timezone.now()
    )


def customer_mark_complained(*, customer_id: int) -> None:
    """Records that the customer reported our email as spam (once; the first time
    is kept), so no campaign emails them again."""
    Customer.objects.filter(pk=customer_id, complained_at__isnull=True).update(
        complained_at=timezone.now()
    )


def _interaction_same(existing: Interaction, interaction: Interaction) -> bool:
    """Whether a stored interaction is the one a retried call describes again."""
    return (
        existing.customer_id == interaction.customer_id
        and existing.kind == interaction.kind
    )


def _interaction_conflict(external_id: str) -> ValidationError:
    message = _(
        "The external id %(id)s is already used by another customer's "
        "interaction or another kind."
    ) % {"id": external_id}
    return ValidationError({"external_id": ValidationError(message, code=CONFLICT)})


def interaction_record(
    *,
    customer: Customer,
    kind: str,
    channel: str = "",
    occurred_at=None,
    properties: dict | None = None,
    external_id: str = "",
) -> tuple[Interaction, bool]:
    """
    Records one event in a customer's history; returns it and whether it is new.

    With an external id the call is idempotent: a retry (the same id, customer and
    kind) returns the interaction recorded the first time; the same id used for
    another customer or kind is a conflict.
    """
    interaction = Interaction(
        customer=customer,
        kind=kind,
        occurred_at=occurred_at or timezone.now(),
        properties=properties or {},
        external_id=external_id,
    )
    if channel:
        interaction.channel = channel
    # The unique constraint is checked by the insert, where two retries racing
    # each other are told apart, not by a read before it.
    interaction.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            interaction.save()
    except IntegrityError:
        existing = (
            Interaction.objects.filter(external_id=external_id).first()
            if external_id
            else None
        )
        if existing is None:
            raise
        if not _interaction_same(existing, interaction):
            raise _interaction_conflict(external_id) from None
        return existing, False
    transaction.on_commit(
        lambda: interaction_recorded.send_robust(
            sender=Interaction, interaction=interaction
        )
    )
    return interaction, True


def segment_create(
    *,
    name: str,
    conditions: list | None = None,
    match: str = "all",
    description: str = "",
) -> Segment:
    """Saves a new segment after checking its conditions."""
    segment = Segment(
        name=name, conditions=conditions or [], match=match, description=description
    )
    segment.full_clean()
    with transaction.atomic():
        segment.save()
    return segment


def segment_update(*, segment: Segment, **fields) -> Segment:
    """Changes a segment; campaigns that target it invite by the new conditions."""
    for name, value in fields.items():
        setattr(segment, name, value)
    segment.full_clean()
    with transaction.atomic():
        segment.save()
    return segment


def segment_delete(*, segment: Segment) -> None:
    """Deletes a segment no campaign targets (a campaign's audience is history)."""
    with transaction.atomic():
        if segment.campaigns.exists():
            raise ValidationError(
                _("Campaigns target this segment: change them before deleting it."),
                code=CONFLICT,
            )
        segment.delete()


def customer_delete(*, customer: Customer) -> None:
    """
    Erases a customer: the customer and everything they gave us (interactions,
    invitations, answers, follow-ups) go with them.
    """
    with transaction.atomic():
        customer.delete()


def interaction_delete(*, interaction: Interaction) -> None:
    """Deletes an interaction recorded by mistake."""
    with transaction.atomic():
        interaction.delete()


# Rows written per transaction by an import: a few thousand keeps each batch's
# lookups to one query and its memory small, whatever the file's size.
IMPORT_BATCH = 2000
# Errors an import names; beyond these it only counts them, so a file of bad
# rows cannot make a huge answer.
IMPORT_MAX_ERRORS = 1000
CUSTOMER_COLUMNS = ("email", "name", "locale", "external_id")
INTERACTION_COLUMNS = (
    "customer",
    "customer_email",
    "customer_external_id",
    "kind",
    "channel",
    "occurred_at",
    "external_id",
)


@dataclass
class ImportResult:
    """What an import did: rows created, updated (or recorded before), refused."""

    created: int = 0
    updated: int = 0
    recorded_before: int = 0
    errors: list[dict] = dataclass_field(default_factory=list)
    error_count: int = 0

    def refuse(self, line: int, error) -> None:
        self.error_count += 1
        if len(self.errors) < IMPORT_MAX_ERRORS:
            self.errors.append({"line": line, "error": _error_text(error)})


def _error_text(error) -> str:
    """One line of text for a refused row, naming the fields it is about."""
    if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
        return " ".join(
            f"{name}: {' '.join(messages)}"
            if name != NON_FIELD_ERRORS
            else " ".join(messages)
            for name, messages in error.message_dict.items()
        )
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error)


def _batches(rows: Iterable, keys) -> Iterator[list]:
    """
    Groups rows into batches of IMPORT_BATCH, starting a new batch before a row
    that shares a key (an email, an external id) with one already in it, so the
    rows of a batch can be written together and still act in the file's order.
    """
    batch, seen = [], set()
    for row in rows:
        row_keys = keys(row)
        if len(batch) >= IMPORT_BATCH or seen & row_keys:
            yield batch
            batch, seen = [], set()
        batch.append(row)
        seen |= row_keys
    if batch:
        yield batch


def customer_fields_from_row(row: dict) -> dict:
    """
    Returns a CSV row's customer fields: the known columns that are not empty
    (an empty cell leaves the field as it is), the others as properties.
    """
    fields = {
        name: row[name].strip()
        for name in CUSTOMER_COLUMNS
        if name in row and row[name].strip()
    }
    properties = {
        name: property_value(value)
        for name, value in row.items()
        if name not in CUSTOMER_COLUMNS and value != ""
    }
    if properties:
        fields["properties"] = properties
    return fields


def _email_key(email: str) -> str:
    # What Lower() does in PostgreSQL for the unique constraint, near enough for
    # grouping; the database's own comparison decides matches.
    return email.lower()


def customer_match(*, email: str, external_id: str = "") -> Customer | None:
    """
    Returns the customer an import row describes: by external id if it has one
    that a customer has, else by email in any case. Raises a conflict if the
    email belongs to a customer with another external id.
    """
    found = _customers_matching([email], [external_id] if external_id else [])
    return _customer_pick(found, email=email, external_id=external_id)


def _customers_matching(emails, external_ids) -> dict:
    """The customers having one of these external ids or emails (in any case), by
    ("external_id", id) and by ("email", lowercased email)."""
    customers = Customer.objects.alias(email_lower=Lower("email")).filter(
        Q(external_id__in=[e for e in external_ids if e])
        | Q(email_lower__in=[_email_key(e) for e in emails])
    )
    found = {}
    for customer in customers:
        if customer.external_id:
            found[("external_id", customer.external_id)] = customer
        found[("email", _email_key(customer.email))] = customer
    return found


def _customer_pick(found: dict, *, email: str, external_id: str) -> Customer | None:
    """customer_match's rule, over customers _customers_matching found."""
    customer = None
    if external_id:
        customer = found.get(("external_id", external_id))
    by_email = found.get(("email", _email_key(email))) if email else None
    if customer is None:
        if by_email and by_email.external_id and external_id:
            raise ValidationError(
                {
                    "email": ValidationError(
                        _(
                            "This email belongs to the customer with the external "
                            "id %(id)s."
                        )
                        % {"id": by_email.external_id},
                        code=CONFLICT,
                    )
                }
            )
        return by_email
    if by_email is not None and by_email.pk != customer.pk:
        message = _customer_constraints()[
            "customer_email_unique_ci"
        ].get_violation_error_message()
        raise ValidationError({"email": ValidationError(message, code=CONFLICT)})
    return customer


def _customer_import_one(fields: dict) -> bool:
    """Imports one row through the services; returns whether it created."""
    customer = customer_match(
        email=fields.get("email", ""), external_id=fields.get("external_id", "")
    )
    if customer is None:
        customer_create(**fields)
        return True
    properties = fields.pop("properties", None)
    if properties:
        fields["properties"] = {**customer.properties, **properties}
    customer_update(customer=customer, **fields)
    return False


def _customers_import_batch(batch: list, result: ImportResult) -> None:
    """
    Writes a batch of (line, fields): validated as customer_clean validates, the
    matches found with one query, then one INSERT and one UPDATE in a transaction.
    A row matching a customer another row of the batch already changes waits for
    the next round, so it sees that change.
    """
    good = [f for _, f in batch if not isinstance(f, Exception)]
    found = _customers_matching(
        [f["email"] for f in good], [f.get("external_id", "") for f in good]
    )
    new, changed, later = [], {}, []
    now = timezone.now()
    for line, fields in batch:
        if isinstance(fields, Exception):
            result.refuse(line, fields)
            continue
        try:
            match = _customer_pick(
                found,
                email=fields.get("email", ""),
                external_id=fields.get("external_id", ""),
            )
        except ValidationError as e:
            result.refuse(line, e)
            continue
        if match is None:
            customer = Customer(**fields)
        elif match.pk in changed:
            later.append((line, fields))
            continue
        else:
            # A copy: a row refused below leaves nothing behind in `found`.
            customer = copy.copy(match)
            for name, value in fields.items():
                setattr(customer, name, value)
            if "properties" in fields:
                customer.properties = {**match.properties, **fields["properties"]}
            customer.updated_at = now
        try:
            customer.full_clean(validate_constraints=False)
        except ValidationError as e:
            result.refuse(line, e)
            continue
        if match is None:
            new.append((line, fields, customer))
        else:
            changed[match.pk] = (line, fields, customer)
    try:
        with transaction.atomic():
            Customer.objects.bulk_create([c for _, _, c in new])
            Customer.objects.bulk_update(
                [c for _, _, c in changed.values()], [*CUSTOMER_FIELDS, "updated_at"]
            )
    except IntegrityError:
        # Another writer got in between the lookup and the write: each row again,
        # through the services, which name the rows that clash.
        for line, fields, _customer in [*new, *changed.values()]:
            try:
                created = _customer_import_one(dict(fields))
            except ValidationError as e:
                result.refuse(line, e)
            else:
                result.created += created
                result.updated += not created
    else:
        result.created += len(new)
        result.updated += len(changed)
    if later:
        _customers_import_batch(later, result)


def customers_import(*, rows: Iterable) -> ImportResult:
    """
    Creates or updates a customer for each (line, row) of a CSV file's rows (a
    dict by column name, or a CSVLineError): matched by external id, else by
    email in any case; the columns email, name, locale and external_id are the
    customer's, the others its properties (merged into those it has; a cell that
    is a plain number becomes a number). An empty cell leaves a field as it is.
    Good rows are written in batches of IMPORT_BATCH, one transaction each; bad
    ones are refused by line.
    """
    result = ImportResult()

    def readable():
        # A row refused as it is read goes along with the others, so errors are
        # named in the file's order.
        for line, row in rows:
            if isinstance(row, CSVLineError):
                yield line, row
                continue
            fields = customer_fields_from_row(row)
            if not fields.get("email"):
                yield line, CSVLineError(_("email: Give the customer's email address."))
                continue
            yield line, fields

    def keys(item):
        _line, fields = item
        if isinstance(fields, Exception):
            return set()
        return {("email", _email_key(fields["email"]))} | (
            {("external_id", fields["external_id"])}
            if fields.get("external_id")
            else set()
        )

    for batch in _batches(readable(), keys):
        _customers_import_batch(batch, result)
    result.errors.sort(key=lambda error: error["line"])
    return result


def _occurred_at(text: str):
    """A CSV cell's date and time (ISO 8601; UTC when it gives no offset)."""
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise ValidationError(
            {"occurred_at": _("Give a date and time such as 2024-05-01T09:30:00Z.")}
        )
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value


def _interaction_fields(row: dict) -> dict:
    """
    Returns a CSV row's interaction: the customer as ("customer", id),
    ("customer_email", email) or ("customer_external_id", id) under "reference",
    the known columns that are not empty, the others as properties.
    """
    given = [
        (name, row[name].strip())
        for name in ("customer", "customer_email", "customer_external_id")
        if row.get(name, "").strip()
    ]
    if len(given) != 1:
        raise ValidationError(
            {
                "customer": _(
                    "Name the customer once: by customer (an id), "
                    "customer_email or customer_external_id."
                )
            }
        )
    fields = {"reference": given[0], "kind": row.get("kind", "").strip()}
    for name in ("channel", "external_id"):
        if row.get(name, "").strip():
            fields[name] = row[name].strip()
    if row.get("occurred_at", "").strip():
        fields["occurred_at"] = _occurred_at(row["occurred_at"].strip())
    fields["properties"] = {
        name: property_value(value)
        for name, value in row.items()
        if name not in INTERACTION_COLUMNS and value != ""
    }
    return fields


def _interaction_customers(references) -> dict:
    """The customers these references name, by reference, in one query."""
    ids = [
        int(v)
        for k, v in references
        if k == "customer" and v.isascii() and v.isdigit() and len(v) < 19
    ]
    emails = [_email_key(v) for k, v in references if k == "customer_email"]
    external_ids = [v for k, v in references if k == "customer_external_id"]
    customers = Customer.objects.alias(email_lower=Lower("email")).filter(
        Q(pk__in=ids) | Q(email_lower__in=emails) | Q(external_id__in=external_ids)
    )
    found = {}
    for customer in customers:
        found[("customer", str(customer.pk))] = customer
        found[("customer_email", _email_key(customer.email))] = customer
        if customer.external_id:
            found[("customer_external_id", customer.external_id)] = customer
    return found


def _unknown_customer(reference) -> ValidationError:
    name, value = reference
    if name == "customer":
        message = _("There is no customer %(value)s.")
    elif name == "customer_email":
        message = _("There is no customer with the email %(value)s.")
    else:
        message = _("There is no customer with the external id %(value)r.")
    return ValidationError({name: message % {"value": value}})


def _interactions_recorded(external_ids: list[str]) -> dict:
    """The interactions recorded with these external ids, by external id."""
    found = Interaction.objects.filter(external_id__in=external_ids)
    return {interaction.external_id: interaction for interaction in found}


def _interactions_import_batch(batch: list, result: ImportResult) -> None:
    """
    Writes a batch of (line, fields): the customers found with one query, each
    interaction validated as interaction_record validates, the external ids
    recorded before looked up with one more, then one INSERT in a transaction.
    """
    good = [f for _, f in batch if not isinstance(f, Exception)]
    customers = _interaction_customers([f["reference"] for f in good])
    recorded = _interactions_recorded(
        [f["external_id"] for f in good if "external_id" in f]
    )
    new = []
    for line, fields in batch:
        if isinstance(fields, Exception):
            result.refuse(line, fields)
            continue
        reference = fields["reference"]
        name, value = reference
        if name == "customer_email":
            value = _email_key(value)
        elif name == "customer" and value.isascii() and value.isdigit():
            value = str(int(value))
        key = (name, value)
        customer = customers.get(key)
        if customer is None:
            result.refuse(line, _unknown_customer(reference))
            continue
        values = {k: v for k, v in fields.items() if k != "reference"}
        interaction = Interaction(customer=customer, **values)
        try:
            interaction.full_clean(validate_constraints=False)
        except ValidationError as e:
            result.refuse(line, e)
            continue
        existing = recorded.get(interaction.external_id)
        if existing is not None:
            if _interaction_same(existing, interaction):
                result.recorded_before += 1
            else:
                result.refuse(line, _interaction_conflict(interaction.external_id))
            continue
        new.append((line, values, interaction))
    try:
        with transaction.atomic():
            Interaction.objects.bulk_create([i for _, _, i in new])
    except IntegrityError:
        # Another writer recorded one of these meanwhile: each row again through
        # interaction_record, which tells a retry from a clash.
        for line, values, interaction in new:
            try:
                _recorded, created = interaction_record(
                    customer=interaction.customer, **values
                )
            except ValidationError as e:
                result.refuse(line, e)
            else:
                result.created += created
                result.recorded_before += not created
    else:
        result.created += len(new)


def interactions_import(*, rows: Iterable) -> ImportResult:
    """
    Records an interaction for each (line, row) of a CSV file's rows (a dict by
    column name, or a CSVLineError), as interaction_record does: the customer by
    customer (an id), customer_email or customer_external_id; kind, channel,
    occurred_at (ISO 8601, UTC without an offset; now if empty) and external_id;
    the other columns as properties. A row whose external_id was recorded before
    for the same customer and kind counts as recorded before, not again.
    """
    result = ImportResult()

    def readable():
        # A row refused as it is read goes along with the others, so errors are
        # named in the file's order.
        for line, row in rows:
            if isinstance(row, CSVLineError):
                yield line, row
                continue
            try:
                yield line, _interaction_fields(row)
            except ValidationError as e:
                yield line, e

    def keys(item):
        _line, fields = item
        if isinstance(fields, Exception):
            return set()
        external_id = fields.get("external_id")
        return {external_id} if external_id else set()

    for batch in _batches(readable(), keys):
        _interactions_import_batch(batch, result)
    result.errors.sort(key=lambda error: error["line"])
    return result
