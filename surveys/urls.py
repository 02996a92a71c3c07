from django.urls import path

from . import views

app_name = "surveys"
urlpatterns = [
    path("s/<str:token>/", views.answer, name="answer"),
    path("s/<str:token>/more/", views.more, name="more"),
    path("s/<str:token>/thanks/", views.thanks, name="thanks"),
    path("s/<str:token>/unsubscribe/", views.unsubscribe, name="unsubscribe"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("responses/", views.responses, name="responses"),
    path("responses/export.csv", views.responses_export, name="responses-export"),
]
