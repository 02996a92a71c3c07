"""
Closing the loop with the customer end to end, on the real components: the agent
emails the customer from the follow-up page and a Celery worker sends it through a
real SMTP server; the customer's answer comes back through the email service's
inbound webhook (Mailgun's, signed); once resolved, beat's sweep sends the
check-in, and the customer's "yes" records the recovery.
"""

import base64
import hashlib
import hmac
import re
import time

import pytest

from cxm.followups.models import FollowUp, FollowUpMessage, FollowUpStatus
from surveys.services import response_record
from tests.factories import InvitationFactory, agent

from .conftest import wait_for
from .test_closed_loop import HTTP_TIMEOUT, inputs_of

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
SIGNING_KEY = "key-mailgun-webhook-signing"
BASIC_AUTH = "mailgun:webhook-password"
REPLY_ADDRESS = "replies+{token}@cx.example.com"
CHECKIN_SECONDS = 3


@pytest.fixture
def worker_env():
    return {
        "FOLLOWUP_REPLY_ADDRESS": REPLY_ADDRESS,
        "FOLLOWUP_CHECKIN_HOURS": str(CHECKIN_SECONDS / 3600),
    }


@pytest.fixture
def loop_settings(settings):
    settings.FOLLOWUP_REPLY_ADDRESS = REPLY_ADDRESS
    settings.FOLLOWUP_CHECKIN_HOURS = CHECKIN_SECONDS / 3600
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": SIGNING_KEY}
    settings.ANYMAIL_WEBHOOK_SECRET = BASIC_AUTH


def csrf_of(html: str) -> str:
    return next(
        i["value"] for i in inputs_of(html) if i.get("name") == "csrfmiddlewaretoken"
    )


def test_the_agent_and_the_customer_close_the_loop_by_email(
    loop_settings, transactional_db, live_server, smtp_server, celery_processes, http
):
    site = live_server.url
    owner = agent(username="mina")
    owner.set_password(PASSWORD)
    owner.save()
    invitation = InvitationFactory(customer__email="ana@example.com")
    followup = response_record(invitation=invitation, score=2).followup

    # The agent logs in and sends the prefilled reply from the follow-up page.
    browser = http()
    login = browser.get(f"{site}/accounts/login/", timeout=HTTP_TIMEOUT)
    browser.post(
        f"{site}/accounts/login/",
        data={
            "csrfmiddlewaretoken": csrf_of(login.text),
            "username": "mina",
            "password": PASSWORD,
        },
        timeout=HTTP_TIMEOUT,
    )
    page = browser.get(f"{site}/followups/{followup.pk}/", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200 and 'id="reply-form"' in page.text
    sent = browser.post(
        f"{site}/followups/{followup.pk}/reply/",
        data={
            "csrfmiddlewaretoken": csrf_of(page.text),
            "subject": "Your late order",
            "body": "Hello Ana,\n\nIt ships today.\n\nMina",
        },
        timeout=HTTP_TIMEOUT,
    )
    assert sent.status_code == 200 and "on its way" in sent.text

    [received] = smtp_server.wait_for_messages(1, to="ana@example.com", timeout=30)
    reply = FollowUpMessage.objects.get(followup=followup, kind="reply")
    email = received.message
    assert email["Subject"] == "Your late order"
    assert email["Message-ID"] == reply.message_id
    assert email["Reply-To"] == f"replies+{reply.token}@cx.example.com"
    assert "It ships today." in email.get_body(("plain",)).get_content()

    # Ana answers; the email service posts her email to the inbound webhook.
    mime = (
        "From: Ana <ana@example.com>\r\n"
        f"To: {email['Reply-To']}\r\n"
        "Subject: Re: Your late order\r\n"
        "Message-ID: <answer-1@mail.example.com>\r\n"
        f"In-Reply-To: {email['Message-ID']}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Thanks, it arrived.\r\n"
    )
    timestamp, token = str(int(time.time())), hashlib.sha256(mime.encode()).hexdigest()
    posted = http().post(
        f"{site}/anymail/mailgun/inbound/",
        data={
            "timestamp": timestamp,
            "token": token,
            "signature": hmac.new(
                SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
            ).hexdigest(),
            "recipient": email["Reply-To"],
            "sender": "ana@example.com",
            "body-mime": mime,
        },
        headers={
            "Authorization": "Basic " + base64.b64encode(BASIC_AUTH.encode()).decode()
        },
        timeout=HTTP_TIMEOUT,
    )
    assert posted.status_code == 200
    page = browser.get(f"{site}/followups/{followup.pk}/", timeout=HTTP_TIMEOUT)
    assert "Thanks, it arrived." in page.text

    # The agent resolves it; the sweep asks Ana, once, whether it is resolved.
    resolved = browser.post(
        f"{site}/followups/{followup.pk}/resolve/",
        data={
            "csrfmiddlewaretoken": csrf_of(page.text),
            "root_cause": "service",
            "resolution": "Shipped it.",
        },
        timeout=HTTP_TIMEOUT,
    )
    assert resolved.status_code == 200
    assert FollowUp.objects.get(pk=followup.pk).status == FollowUpStatus.RESOLVED
    [checkin] = smtp_server.wait_for_messages(
        2, to="ana@example.com", timeout=CHECKIN_SECONDS + 30
    )[1:]
    assert checkin.message["Subject"] == "Did we resolve your issue?"
    text = checkin.message.get_body(("plain",)).get_content()
    yes = re.search(r"Yes: (\S+)", text)[1]
    assert yes.startswith(f"{site}/followups/checkin/")

    customer = http()
    question = customer.get(yes, timeout=HTTP_TIMEOUT)
    assert question.status_code == 200
    assert FollowUp.objects.get(pk=followup.pk).recovered is None
    answered = customer.post(yes.split("?")[0], data={"answer": "yes"}, timeout=30)
    assert answered.status_code == 200 and 'id="checkin-thanks"' in answered.text
    assert FollowUp.objects.get(pk=followup.pk).recovered is True

    time.sleep(3)  # more sweeps send nothing more
    assert len(smtp_server.to("ana@example.com")) == 2
    wait_for(
        lambda: FollowUp.objects.get(pk=followup.pk).checkin_sent_at is not None,
        timeout=5,
        what="the check-in marked sent",
    )
