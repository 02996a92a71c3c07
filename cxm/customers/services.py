from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Customer, Interaction
from .signals import interaction_recorded

# The code of an error about the current state, not the request (the API's 409).
CONFLICT = "conflict"


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
    transaction.on_commit(
        lambda: interaction_recorded.send_robust(
            sender=Interaction, interaction=interaction
        )
    )
    return interaction, True
