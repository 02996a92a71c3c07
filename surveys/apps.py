from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SurveysConfig(AppConfig):
    name = "surveys"
    verbose_name = _("Surveys")

    def ready(self):
        from anymail.signals import tracking

        from . import bounces

        # Bounces, complaints and unsubscribes an email service reports later.
        tracking.connect(bounces.tracking_received, dispatch_uid="surveys-tracking")
