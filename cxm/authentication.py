"""How the API knows who calls (a module of its own: DRF imports it early)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from cxm.throttling import token_miss


class TokenAuthentication(authentication.TokenAuthentication):
    """
    DRF's, answering 401 to a token it could never have made (a NUL: a 500), and 429
    to an address that sent more wrong tokens than TOKEN_MISS_RATE (a right token
    still works from there).
    """

    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            if (wait := token_miss(request)) is not None:
                raise exceptions.Throttled(wait)
            raise

    def authenticate_credentials(self, key):
        if not (key.isascii() and key.isalnum()):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(key)
