from django.db.models import BooleanField, Count, ExpressionWrapper, QuerySet, Value
from django.utils import timezone

from .models import CONTACTABLE, Customer, Segment
from .segments import conditions_q


def segment_customers(*, segment: Segment | None, now=None) -> QuerySet[Customer]:
    """Returns the customers in a segment now (every customer for None)."""
    customers = Customer.objects.all()
    if segment is None:
        return customers
    return customers.filter(
        conditions_q(segment.conditions, segment.match, now or timezone.now())
    )


def segment_counts(*, segment: Segment | None, now=None) -> dict:
    """Returns how many customers a segment holds now, and how many are contactable."""
    return segment_customers(segment=segment, now=now).aggregate(
        customers=Count("pk"), contactable=Count("pk", filter=CONTACTABLE)
    )


def customer_segments(customer: Customer, *, now=None) -> list[Segment]:
    """
    Returns the segments `customer` is in now, by name: two queries however many
    segments there are (each segment's conditions as one column of one row).
    """
    segments = list(Segment.objects.order_by("name"))
    if not segments:
        return []
    now = now or timezone.now()
    columns = {
        f"in_{segment.pk}": ExpressionWrapper(
            conditions_q(segment.conditions, segment.match, now)
            if segment.conditions
            else Value(True),
            output_field=BooleanField(),
        )
        for segment in segments
    }
    row = Customer.objects.filter(pk=customer.pk).values(**columns).first() or {}
    return [segment for segment in segments if row.get(f"in_{segment.pk}")]
