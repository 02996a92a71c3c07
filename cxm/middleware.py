"""
Response headers every page gets: which browser features it may use, and that a
page nobody marked cacheable is never stored (most pages show a customer's data).

The Content-Security-Policy is django-csp's: CONTENT_SECURITY_POLICY in settings.
"""

# Browser features no cxm page uses, off for the page and every frame in it. Names
# Chromium knows (an unknown one is a console warning on every page).
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "geolocation",
        "gyroscope",
        "hid",
        "idle-detection",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "screen-wake-lock",
        "serial",
        "usb",
        "xr-spatial-tracking",
    )
)


class SecurityHeadersMiddleware:
    """
    Adds Permissions-Policy to every response, and `Cache-Control: no-store` to
    every response whose view said nothing about caching: the answer pages, the
    staff pages and the API all show a customer's data, and a new view is private
    until it says otherwise (brand.css and the static files say public).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        if "Cache-Control" not in response.headers:
            response["Cache-Control"] = "no-store"
        return response
