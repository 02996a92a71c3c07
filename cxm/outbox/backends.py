from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    """Stores every message in the database outbox, readable at /outbox/."""

    def send_messages(self, email_messages):
        from .models import OutboxEmail

        rows = []
        for message in email_messages:
            html = next(
                (
                    c
                    for c, mimetype in getattr(message, "alternatives", [])
                    if mimetype == "text/html"
                ),
                "",
            )
            headers = {k: str(v) for k, v in message.extra_headers.items()}
            invitation = headers.get("X-Cxm-Invitation", "")
            rows.append(
                OutboxEmail(
                    from_email=message.from_email,
                    to=", ".join(message.recipients()),
                    subject=message.subject,
                    body_text=message.body,
                    body_html=html,
                    headers=headers,
                    kind=headers.get("X-Cxm-Email", "")[:50],
                    invitation_id=int(invitation) if invitation.isdigit() else None,
                )
            )
        OutboxEmail.objects.bulk_create(rows)
        return len(rows)
