from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


@cache_control(max_age=3600, public=True)
def brand_css(request):
    """The brand colour from settings as CSS variables: pages carry no inline style."""
    css = (
        f":root {{ --brand: {settings.BRAND_COLOR}; "
        f"--brand-ink: {settings.BRAND_TEXT_COLOR}; }}\n"
    )
    return HttpResponse(css, content_type="text/css; charset=utf-8")
