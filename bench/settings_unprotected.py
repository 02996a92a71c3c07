"""
bench.settings without the protections of issue 10: no Content-Security-Policy,
Permissions-Policy or no-store headers, no login protection, no rate limits. The
answer page's throughput under it is the reference the protected page is measured
against.
"""

from bench.settings import *  # noqa: F403
from bench.settings import MIDDLEWARE

PROTECTIONS = {
    "csp.middleware.CSPMiddleware",
    "cxm.middleware.SecurityHeadersMiddleware",
    "axes.middleware.AxesMiddleware",
}
MIDDLEWARE = [name for name in MIDDLEWARE if name not in PROTECTIONS]
RATELIMIT_ENABLE = False
AXES_ENABLED = False
