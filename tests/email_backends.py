"""
Email backends that stand in for a mail server saying no. Each keeps what it does
send in Django's locmem outbox (the `mailoutbox` fixture), like the test backend.

Point settings.EMAIL_BACKEND at one and set its class attributes with monkeypatch.
"""

import smtplib

from anymail.backends import test as anymail_test
from anymail.message import AnymailRecipientStatus
from django.core import mail
from django.core.mail.backends import locmem


class RefusingBackend(locmem.EmailBackend):
    """Refuses the recipients in `refused`, as a server answering 550 does."""

    refused: set[str] = set()

    def send_messages(self, messages):
        for message in messages:
            refused = {
                r: (550, b"5.1.1 No such user")
                for r in message.recipients()
                if r in self.refused
            }
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)
        return super().send_messages(messages)


class AnymailRefusingBackend(anymail_test.EmailBackend):
    """
    anymail's test backend, whose email service rejects the recipients in
    `refused` as a real one's API answers: anymail raises AnymailRecipientsRefused.
    """

    refused: set[str] = set()

    def post_to_esp(self, payload, message):
        statuses = {
            email: AnymailRecipientStatus(
                message_id=None,
                status="rejected" if email in self.refused else "sent",
            )
            for email in payload.recipient_emails
        }
        message.anymail_test_response = {"recipient_status": statuses}
        return super().post_to_esp(payload, message)


class UnreachableBackend(locmem.EmailBackend):
    """A server that cannot be reached: opening the connection fails."""

    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")

    def send_messages(self, messages):
        self.open()


class FlakyBackend(locmem.EmailBackend):
    """Drops the connection on the first `failures` messages, then sends."""

    failures = 0

    def send_messages(self, messages):
        if FlakyBackend.failures > 0:
            FlakyBackend.failures -= 1
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


class Dying(BaseException):
    """What a worker killed mid-message looks like to the code it was running."""


class DyingBackend(locmem.EmailBackend):
    """Sends `sends` messages, then dies in the middle of the next one."""

    sends = 0

    def send_messages(self, messages):
        if len(mail.outbox) >= self.sends:
            raise Dying
        return super().send_messages(messages)


class DroppingBackend(locmem.EmailBackend):
    """
    A server that drops the session on the first message after `drop_after`
    messages; counts the sessions opened (class attributes, reset by the test).
    """

    drop_after = 1
    sessions = 0
    sent_in_session = 0

    def open(self):
        if getattr(self, "is_open", False):
            return False
        self.is_open = True
        type(self).sessions += 1
        type(self).sent_in_session = 0
        return True

    def close(self):
        self.is_open = False

    def send_messages(self, messages):
        # As the SMTP backend: a session opened here is closed here.
        opened = self.open()
        try:
            if type(self).sent_in_session >= self.drop_after:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            type(self).sent_in_session += len(messages)
            return super().send_messages(messages)
        finally:
            if opened:
                self.close()
