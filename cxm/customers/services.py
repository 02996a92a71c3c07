from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Customer, Interaction

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


def _interaction_same(existing: Interaction, interaction: Interaction) -> bool:
    """Whether a stored interaction is the one a retried call describes again."""
    return (
        existing.customer_id == interaction.customer_id
        and existing.kind == interaction.kind
    )


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
            message = _(
                "The external id %(id)s is already used by another customer's "
                "interaction or another kind."
            ) % {"id": external_id}
            raise ValidationError(
                {"external_id": ValidationError(message, code=CONFLICT)}
            ) from None
        return existing, False
    return interaction, True
