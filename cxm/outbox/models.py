from django.db import models
from django.utils.translation import gettext_lazy as _


class OutboxEmail(models.Model):
    """An email the embedded default stored instead of sending, for staff to read."""

    from_email = models.CharField(_("from"), max_length=300)
    to = models.TextField(_("to"))
    subject = models.CharField(_("subject"), max_length=500)
    body_text = models.TextField(_("text"))
    body_html = models.TextField(_("HTML"), blank=True)
    headers = models.JSONField(_("headers"), default=dict)
    # Which email it is (cxm.emails' name: invitation, reminder, followup-…) and
    # the invitation it carries, from the X-Cxm-Email and X-Cxm-Invitation headers.
    kind = models.CharField(_("kind"), max_length=50, blank=True, db_index=True)
    invitation_id = models.BigIntegerField(_("invitation"), null=True, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        verbose_name = _("outbox email")
        verbose_name_plural = _("outbox emails")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.subject
