"""
The email send rate limit, shared by every worker on every machine:
EMAIL_SEND_RATE emails a second at most (an email service's quota).

Time is cut into slots of 1/rate seconds, numbered from the epoch. Before each
email a sender takes the first free slot from the current one on (cache.add of
the slot's key: one winner, in Redis as in the database cache), waits for the
slot's start if it lies ahead, then sends. So at most one email starts per slot,
whichever process or machine sends it; the machines' clocks are kept by NTP.

The slots live in the default cache, which every process shares (see settings).
A cache that fails lets the email go and logs a warning: a limit never stops
delivery.
"""

import logging
import math
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

# Slots one sender tries before giving up on the limit (senders far outnumbering
# this would mean something else is wrong).
MAX_PROBES = 1000
# Seconds a taken slot's key outlives its start: nobody asks for it after that.
KEEP = 60


def send_slot_wait(*, rate: float | None = None, clock=time.time, sleep=time.sleep):
    """
    Waits until this sender may send one email under the shared rate (by default
    settings.EMAIL_SEND_RATE; 0 = no limit); returns the seconds it waited.
    """
    rate = settings.EMAIL_SEND_RATE if rate is None else rate
    if not rate:
        return 0.0
    now = clock()
    slot = math.floor(now * rate)
    try:
        for _probe in range(MAX_PROBES):
            if cache.add(f"send-slot:{rate:g}:{slot}", 1, timeout=KEEP):
                break
            slot += 1
        else:
            logger.warning("No free send slot in %d; sending anyway", MAX_PROBES)
            return 0.0
    except Exception:
        logger.warning("Could not take a send slot; sending anyway", exc_info=True)
        return 0.0
    wait = slot / rate - now
    if wait <= 0:
        return 0.0
    sleep(wait)
    return wait
