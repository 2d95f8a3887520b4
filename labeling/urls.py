from django.urls import path

from labeling import views, webhooks

urlpatterns = [
    path("runs/<int:run_id>/", views.run_detail, name="run-detail"),
    path("runs/<int:run_id>/progress.json", views.run_progress, name="run-progress"),
    path("runs/<int:run_id>/retry-failed/", views.run_retry_failed, name="run-retry-failed"),
    path("queues/", views.queues_overview, name="queues"),
    path("review-images/<str:token>", views.review_image, name="review-image"),
    path("hooks/label-studio/", webhooks.label_studio_webhook, name="label-studio-webhook"),
]
