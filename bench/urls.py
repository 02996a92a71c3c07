"""cxm's URLs, plus the bare view the answer throughput is measured against."""

from django.urls import path

from bench import views
from cxm import urls

handler404 = urls.handler404
urlpatterns = [
    path("bench/s/<str:token>/", views.answer_bare, name="bench-answer-bare"),
    *urls.urlpatterns,
]
