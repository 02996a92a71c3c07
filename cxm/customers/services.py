from django.db import transaction
from django.utils import timezone

from .models import Customer


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
