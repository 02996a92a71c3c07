"""The email send rate limit: one email per slot of 1/rate s, whoever sends it."""

import logging

from cxm.send_rate import send_slot_wait


class Clock:
    """A clock that only moves when someone sleeps."""

    def __init__(self, now: float):
        self.now = now
        self.slept = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


def test_it_gives_senders_at_one_moment_one_slot_each():
    clock = Clock(1000.0)

    waits = [
        round(send_slot_wait(rate=10, clock=clock, sleep=clock.sleep), 6)
        for _ in range(4)
    ]

    assert waits == [0.0, 0.1, 0.2, 0.3]
    assert clock.slept == [0.1, 0.2, 0.3]


def test_it_sends_at_once_when_the_slot_is_free_again():
    clock = Clock(2000.0)
    send_slot_wait(rate=2, clock=clock, sleep=clock.sleep)
    clock.now += 0.5

    assert send_slot_wait(rate=2, clock=clock, sleep=clock.sleep) == 0.0
    assert send_slot_wait(rate=2, clock=clock, sleep=clock.sleep) == 0.5


def test_it_counts_nothing_without_a_limit(settings):
    settings.EMAIL_SEND_RATE = 0.0
    settings.CACHES = {"default": {"BACKEND": "no.such.Cache"}}

    assert send_slot_wait() == 0.0


def test_it_reads_the_limit_from_the_settings(settings):
    settings.EMAIL_SEND_RATE = 4.0
    clock = Clock(3000.0)

    send_slot_wait(clock=clock, sleep=clock.sleep)
    assert send_slot_wait(clock=clock, sleep=clock.sleep) == 0.25


def test_it_lets_the_email_go_when_the_cache_does_not_answer(settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    clock = Clock(4000.0)

    with caplog.at_level(logging.WARNING, logger="cxm.send_rate"):
        waits = [send_slot_wait(rate=1, clock=clock, sleep=clock.sleep) for _ in "ab"]

    assert waits == [0.0, 0.0]
    assert "sending anyway" in caplog.text
