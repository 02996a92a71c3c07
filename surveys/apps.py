from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = _("Surveys")

    def ready(self):
        from . import segments

        segments.register()

        from . import timeline

        timeline.register()

        from cxm.customers.models import Interaction
        from cxm.customers.signals import interaction_recorded

        from .services import on_interaction_recorded

        interaction_recorded.connect(
            on_interaction_recorded,
            sender=Interaction,
            dispatch_uid="surveys.triggers",
        )

        from anymail.signals import tracking

        from . import bounces

        # Bounces, complaints and unsubscribes an email service reports later.
        tracking.connect(bounces.tracking_received, dispatch_uid="surveys-tracking")

        from django.db.models.signals import post_migrate

        from .rollups import on_post_migrate

        # The daily rollups count in TIME_ZONE's days: recounted if it changed.
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="rollups")
