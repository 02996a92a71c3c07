"""cxm.emails: messages from templates, sent on one connection per block."""

import smtplib

import pytest

from cxm import emails
from tests.email_backends import DroppingBackend


@pytest.fixture
def dropping(settings, monkeypatch):
    settings.EMAIL_BACKEND = "tests.email_backends.DroppingBackend"
    monkeypatch.setattr(DroppingBackend, "sessions", 0)
    monkeypatch.setattr(DroppingBackend, "drop_after", 2)
    return DroppingBackend


def send(to: str) -> None:
    emails.send("followup-escalated-again", to=[to], context={"followup": None})


def test_it_sends_a_blocks_messages_on_one_session(dropping, mailoutbox):
    with emails.one_connection():
        send("a@example.com")
        send("b@example.com")

    assert [m.to for m in mailoutbox] == [["a@example.com"], ["b@example.com"]]
    assert dropping.sessions == 1


def test_it_opens_a_new_session_after_the_server_dropped_one(dropping, mailoutbox):
    with emails.one_connection():
        send("a@example.com")
        send("b@example.com")
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send("c@example.com")
        send("d@example.com")

    assert [m.to[0] for m in mailoutbox] == [
        "a@example.com",
        "b@example.com",
        "d@example.com",
    ]
    assert dropping.sessions == 2


def test_it_sends_each_message_on_its_own_session_outside_a_block(dropping, mailoutbox):
    send("a@example.com")
    send("b@example.com")
    send("c@example.com")

    assert len(mailoutbox) == 3
    assert dropping.sessions == 3
