from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from cxm.access import IsCxStaff
from cxm.api import not_found
from cxm.customers.api import CustomerViewSet, InteractionViewSet, SegmentViewSet
from cxm.followups.api import FollowUpReportView, FollowUpViewSet, RootCauseViewSet
from journeys.api import JourneyViewSet, PersonaViewSet
from surveys.api import (
    CampaignViewSet,
    CesView,
    CompareView,
    CsatView,
    InvitationViewSet,
    NpsView,
    ResponseExportView,
    ResponseViewSet,
    SurveyViewSet,
    TrendView,
)

router = DefaultRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("interactions", InteractionViewSet, basename="interaction")
router.register("segments", SegmentViewSet, basename="segment")
router.register("surveys", SurveyViewSet, basename="survey")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("invitations", InvitationViewSet, basename="invitation")
router.register("responses", ResponseViewSet, basename="response")
router.register("followups", FollowUpViewSet, basename="followup")
router.register("root-causes", RootCauseViewSet, basename="rootcause")
router.register("journeys", JourneyViewSet, basename="journey")
router.register("personas", PersonaViewSet, basename="persona")

# The schema and its docs are for CX staff like the rest of the API.
staff_only = {"permission_classes": [IsCxStaff]}

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(**staff_only), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            # Its inline style and script with the Content-Security-Policy's nonce.
            url_name="schema",
            template_name="api/docs.html",
            **staff_only,
        ),
        name="api-docs",
    ),
    path("metrics/nps/", NpsView.as_view(), name="metrics-nps"),
    path("metrics/csat/", CsatView.as_view(), name="metrics-csat"),
    path("metrics/ces/", CesView.as_view(), name="metrics-ces"),
    path("metrics/trend/", TrendView.as_view(), name="metrics-trend"),
    path("metrics/compare/", CompareView.as_view(), name="metrics-compare"),
    path("reports/followups/", FollowUpReportView.as_view(), name="reports-followups"),
    # Before the router's responses/<id>/, and with no final slash: a file's name.
    path(
        "responses/export.csv",
        ResponseExportView.as_view(),
        name="responses-export",
    ),
    *router.urls,
    # What no route above takes (/api/campaigns/abc/) is a JSON 404 like the rest
    # of the API; a path without its final slash still gets Django's redirect.
    re_path(r"^.*/$", not_found),
]
