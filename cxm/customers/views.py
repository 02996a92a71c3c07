from django.core.exceptions import ValidationError
from django.shortcuts import render

from cxm.access import customer_for_user, cx_staff_required

from .models import SUPPRESSIONS
from .selectors import customer_segments
from .timeline import Cursor, customer_panels, customer_timeline


@cx_staff_required
def customer_detail(request, pk: int):
    """
    The customer's whole story: who they are, their scores over time and a page
    of their timeline (newest first; ?cursor= for older ones).
    """
    customer = customer_for_user(request.user, pk)
    cursor, error, status = None, None, 200
    if request.GET.get("cursor"):
        try:
            cursor = Cursor.decode(request.GET["cursor"])
        except ValidationError as e:
            error, status = " ".join(e.messages), 400
    timeline = customer_timeline(
        customer_id=customer.pk, user=request.user, cursor=cursor
    )
    suppressions = [
        (name, getattr(customer, field))
        for name, field in SUPPRESSIONS.items()
        if getattr(customer, field) is not None
    ]
    return render(
        request,
        "customers/detail.html",
        {
            "customer": customer,
            "segments": customer_segments(customer),
            "suppressions": suppressions,
            "panels": customer_panels(customer),
            "entries": timeline["entries"],
            "next_cursor": timeline["next"].encode() if timeline["next"] else "",
            "older": cursor is not None,
            "cursor_error": error,
        },
        status=status,
    )
