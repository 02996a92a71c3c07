from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class FollowupsConfig(AppConfig):
    name = "cxm.followups"
    label = "followups"
    verbose_name = _("Follow-ups")

    def ready(self):
        from . import timeline

        timeline.register()

        from surveys.models import Response
        from surveys.signals import response_recorded

        from .services import on_response_recorded

        response_recorded.connect(
            on_response_recorded, sender=Response, dispatch_uid="followups.open"
        )
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed

        from .services import on_groups_changed

        m2m_changed.connect(
            on_groups_changed,
            sender=get_user_model().groups.through,
            dispatch_uid="followups.agent_turns",
        )
        from anymail.signals import inbound

        from .replies import inbound_received

        inbound.connect(inbound_received, dispatch_uid="followups.inbound")
        # Copies a staff member's language and time zone into their session at
        # log-in (user_logged_in receiver).
        from . import preferences  # noqa: F401
