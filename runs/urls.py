from django.urls import path

from runs import views

urlpatterns = [
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/progress.json", views.run_progress, name="run-progress"),
    path("runs/<int:run_id>/retry-failed/", views.run_retry_failed, name="run-retry-failed"),
]
