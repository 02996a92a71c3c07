"""
Invitation delivery: campaign_send through a real Celery worker to a real SMTP server,
against plain smtplib sending similar messages over one connection to that server.
"""

import smtplib
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

# One customer in this many reads Korean, so both catalogs are rendered.
KOREAN_EVERY = 5


@dataclass(frozen=True)
class Sample:
    """A rendered invitation email; the reference sends it with its token swapped."""

    subject: str
    from_email: str
    text: str
    html: str
    headers: dict
    token: str
    wire_bytes: int


def customers_create(*, count: int, run: str) -> None:
    """`count` customers of their own for one run (the property "run")."""
    from cxm.customers.models import Customer

    Customer.objects.bulk_create(
        [
            Customer(
                email=f"customer{i}.{run}@bench.example.com",
                name=f"Customer {i}",
                locale="ko" if i % KOREAN_EVERY == 0 else "en",
                properties={"plan": "pro" if i % 2 else "basic", "run": run},
            )
            for i in range(count)
        ],
        batch_size=1000,
    )


def campaign_create(*, name: str, run: str):
    """
    A campaign to the customers of one run, under the default contact-frequency
    rule: each run has customers of its own, so the rule is asked of every
    invitation and holds none back.
    """
    from cxm.customers.services import segment_create
    from surveys.models import Campaign
    from surveys.services import survey_create

    segment = segment_create(
        name=f"{name} customers",
        conditions=[{"type": "property", "name": "run", "op": "equals", "value": run}],
    )
    return Campaign.objects.create(
        name=name, survey=survey_create(name=f"{name} survey"), segment=segment
    )


def samples(*, campaign) -> dict[str, Sample]:
    """Returns an invitation email as the worker renders it, per language."""
    from cxm.customers.models import Customer
    from surveys.models import Invitation
    from surveys.services import invitation_message

    found = {}
    for locale in ("en", "ko"):
        customer = Customer.objects.filter(locale=locale).first()
        invitation = Invitation(campaign=campaign, customer=customer, pk=1)
        message = invitation_message(invitation=invitation)
        (html, _mimetype), *_ = message.alternatives
        found[locale] = Sample(
            subject=message.subject,
            from_email=message.from_email,
            text=message.body,
            html=html,
            headers=dict(message.extra_headers),
            token=invitation.token,
            wire_bytes=len(message.message().as_bytes()),
        )
    return found


def smtplib_send(*, port: int, samples: dict, count: int) -> float:
    """
    Sends `count` invitation-like emails over one SMTP connection, building each
    with email.message.EmailMessage; returns the seconds it took in all, and the
    part of them spent in send_message (serializing and the SMTP exchange).
    """
    from surveys.models import new_token

    started = time.perf_counter()
    transfer = 0.0
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(count):
            sample = samples["ko" if i % KOREAN_EVERY == 0 else "en"]
            token = new_token()
            message = EmailMessage()
            message["Subject"] = sample.subject
            message["From"] = sample.from_email
            message["To"] = f"customer{i}@bench.example.com"
            message["Date"] = formatdate(localtime=True)
            for name, value in sample.headers.items():
                if name != "Message-ID":  # cxm's is the invitation's own
                    message[name] = value.replace(sample.token, token)
            message["Message-ID"] = make_msgid(domain="bench.example.com")
            message.set_content(sample.text.replace(sample.token, token))
            message.add_alternative(
                sample.html.replace(sample.token, token), subtype="html"
            )
            sending = time.perf_counter()
            smtp.send_message(message)
            transfer += time.perf_counter() - sending
    return time.perf_counter() - started, transfer


def pipeline_send(*, campaign, smtp, expected: int, timeout: float) -> float:
    """
    Sends the campaign with campaign_send (which enqueues on commit) and returns the
    seconds until the SMTP server has every email and every invitation is sent.
    """
    from surveys.models import Invitation, InvitationStatus
    from surveys.services import campaign_send

    already, _ = smtp.counts()
    started = time.perf_counter()
    created = campaign_send(campaign=campaign)
    if created != expected:
        raise RuntimeError(
            f"campaign_send created {created} invitations, not {expected}"
        )
    smtp.wait_for(already + expected, timeout=timeout)
    invitations = Invitation.objects.filter(campaign=campaign)
    deadline = time.monotonic() + timeout
    while (sent := invitations.filter(status=InvitationStatus.SENT).count()) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sent} of {expected} invitations are marked sent")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    if (received := smtp.counts()[0] - already) != expected:
        raise RuntimeError(f"the SMTP server received {received} emails for {expected}")
    return elapsed
