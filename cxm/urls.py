from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from cxm.followups.views import home, preferences_page
from cxm.views import brand_css

urlpatterns = [
    path("brand.css", brand_css, name="brand-css"),
    # Each user's start page: agents their queue, managers the dashboard, …
    path("", home, name="home"),
    path("preferences/", preferences_page, name="preferences"),
    path("", include("surveys.urls")),
    path("customers/", include("cxm.customers.urls")),
    path("followups/", include("cxm.followups.urls")),
    path("journeys/", include("journeys.urls")),
    path("outbox/", include("cxm.outbox.urls")),
    path("api/", include("cxm.api_urls")),
    # Email services' tracking webhooks: bounces, complaints (surveys.bounces).
    path("anymail/", include("cxm.anymail_urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

handler403 = "cxm.views.permission_denied"
handler404 = "cxm.views.not_found"
