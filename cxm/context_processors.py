"""What every page (and email) may draw: the company's name, logo and colour."""

from django.conf import settings
from django.templatetags.static import static


def brand(request=None) -> dict:
    return {
        "COMPANY_NAME": settings.COMPANY_NAME,
        "COMPANY_LOGO_URL": static(settings.COMPANY_LOGO)
        if settings.COMPANY_LOGO
        else "",
        "BRAND_COLOR": settings.BRAND_COLOR,
        "BRAND_TEXT_COLOR": settings.BRAND_TEXT_COLOR,
    }
