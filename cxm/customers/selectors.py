from django.db.models import Count, QuerySet
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
