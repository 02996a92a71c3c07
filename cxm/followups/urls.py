from django.urls import path

from . import views

app_name = "followups"
urlpatterns = [
    path("", views.followup_list, name="list"),
    path("assign/", views.followup_bulk_assign, name="bulk_assign"),
    path("reports/", views.followup_reports, name="reports"),
    path("reports/csv/", views.followup_reports_csv, name="reports-csv"),
    path("<int:pk>/", views.followup_detail, name="detail"),
    path("<int:pk>/take/", views.followup_take, name="take"),
    path("<int:pk>/note/", views.followup_note, name="note"),
    path("<int:pk>/contact/", views.followup_contact, name="contact"),
    path("<int:pk>/wait/", views.followup_wait, name="wait"),
    path("<int:pk>/resolve/", views.followup_resolve, name="resolve"),
    path("<int:pk>/close/", views.followup_close, name="close"),
    path("<int:pk>/reopen/", views.followup_reopen, name="reopen"),
    path("<int:pk>/reply/", views.followup_reply, name="reply"),
    # The customer's page, from the check-in email: the token is the credential.
    path("checkin/<str:token>/", views.checkin, name="checkin"),
]
