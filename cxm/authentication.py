"""How the API knows who calls (a module of its own: DRF imports it early)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's, answering 401 to a token it could never have made (a NUL: a 500)."""

    def authenticate_credentials(self, key):
        if not (key.isascii() and key.isalnum()):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(key)
