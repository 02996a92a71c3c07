"""
The request limits: who a client is (its address), wrong tokens per address, one-click
unsubscribes per link, and the API's throttle per user.

The counts live in the default cache (Redis, or the database: see settings), which
every process shares. A cache that fails lets the request through and logs a
warning: a limit never takes a page down.

A module of its own, free of models: DRF imports its throttle early.
"""

import ipaddress
import logging

from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework import throttling

logger = logging.getLogger(__name__)


def client_address(request) -> str:
    """
    Returns the client's IP address: REMOTE_ADDR, or behind NUM_PROXIES reverse
    proxies, the address the outermost of them saw (the NUM_PROXIES-th from the right
    of X-Forwarded-For: what a client writes there itself stays on the left).
    """
    remote = _plain(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.NUM_PROXIES
    if not proxies:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    forwarded = [address.strip() for address in forwarded if address.strip()]
    if len(forwarded) < proxies:
        return remote  # it did not come through the proxies
    try:
        ipaddress.ip_address(forwarded[-proxies])
    except ValueError:
        return remote
    return _plain(forwarded[-proxies])


def _plain(address: str) -> str:
    """
    Returns an IP address in its usual form: an IPv4 client of a server bound to
    [::] arrives as ::ffff:a.b.c.d, which is a.b.c.d (else every IPv4 client would
    share the one IPv6 /64 that limits count by).
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6 and ip.ipv4_mapped:
        return str(ip.ipv4_mapped)
    return str(ip)


def client_network(request) -> str:
    """
    Returns what a limit counts a client by: its IPv4 address, or its IPv6 /64 (one
    machine often holds a whole /64, and would otherwise have 2^64 addresses to use).
    """
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def _over(request, *, group: str, rate: str, key: str | None = None) -> int | None:
    """
    Counts one request of `group` under key (by default the client's network);
    returns the seconds until its window ends if that made more than `rate`, else
    None.
    """
    try:
        usage = get_usage(
            request,
            group=group,
            key=lambda _group, request: key or client_network(request),
            rate=rate,
            increment=True,
        )
    except Exception:
        logger.warning("Could not count %s; letting the request through", group)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    return max(usage["time_left"], 1)


def token_miss(request) -> int | None:
    """
    Counts a wrong token (a survey link, an API token) from the client's address;
    returns the seconds to wait if the address has missed more than TOKEN_MISS_RATE.
    """
    return _over(request, group="token-miss", rate=settings.TOKEN_MISS_RATE)


def unsubscribe_count(request, *, token: str) -> int | None:
    """
    Counts a one-click unsubscribe of one link; returns the seconds to wait if the
    link was posted more than UNSUBSCRIBE_RATE times. Counted per link, not per
    address: Gmail and Yahoo post every recipient's one-click unsubscribe (RFC
    8058) from the same few servers, and each must be honoured. Guessed links are
    counted per address, as misses (token_miss).
    """
    return _over(
        request, group="unsubscribe", rate=settings.UNSUBSCRIBE_RATE, key=token
    )


class UserRateThrottle(throttling.UserRateThrottle):
    """
    DRF's throttle per user (an integrator's token, an agent's session), at
    API_THROTTLE_RATE as settings say when the request comes, counting by
    client_network where it counts by address.
    """

    def get_rate(self):
        return settings.API_THROTTLE_RATE

    def get_ident(self, request):
        return client_network(request)

    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("Could not count an API request; letting it through")
            return True
