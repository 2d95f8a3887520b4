from django.urls import path

from review import views, webhooks

urlpatterns = [
    path("queues/", views.queues_overview, name="queues"),
    path("review-images/<str:token>", views.review_image, name="review-image"),
    path("hooks/label-studio/", webhooks.label_studio_webhook, name="label-studio-webhook"),
]
