"""
The API's renderers. A module of its own, free of models and views: DRF imports its
renderer classes while rest_framework.views is still loading.
"""

from csp.constants import UNSAFE_INLINE
from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """
    DRF's, whose pages draw with style attributes, which no Content-Security-Policy
    nonce can allow: its responses alone allow inline styles.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None:
            response._csp_update = {"style-src": [UNSAFE_INLINE]}
        return super().render(data, accepted_media_type, renderer_context)
