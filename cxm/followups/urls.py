from django.urls import path

from . import views

app_name = "followups"
urlpatterns = [
    path("", views.followup_list, name="list"),
    path("<int:pk>/", views.followup_detail, name="detail"),
    path("<int:pk>/take/", views.followup_take, name="take"),
    path("<int:pk>/note/", views.followup_note, name="note"),
    path("<int:pk>/resolve/", views.followup_resolve, name="resolve"),
]
