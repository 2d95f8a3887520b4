from django.urls import path

from review import views, webhooks

urlpatterns = [
    path("queues/", views.queues_overview, name="queues"),
    path("vendors/<int:vendor_id>/quality/", views.vendor_quality_page, name="vendor-quality"),
    path("labelers/<int:labeler_id>/quality/", views.labeler_quality_page, name="labeler-quality"),
    path("review-images/<str:token>", views.review_image, name="review-image"),
    path("hooks/label-studio/", webhooks.label_studio_webhook, name="label-studio-webhook"),
]
