from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from cxm.access import staff_required

from .models import OutboxEmail


@staff_required
def outbox_list(request):
    page = Paginator(OutboxEmail.objects.all(), 50).get_page(request.GET.get("page"))
    return render(request, "outbox/list.html", {"page": page})


@staff_required
def outbox_detail(request, pk: int):
    email = get_object_or_404(OutboxEmail, pk=pk)
    return render(request, "outbox/detail.html", {"email": email})
