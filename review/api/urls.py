from django.urls import path

from review.api import views

urlpatterns = [
    path("labelers/<int:labeler_id>/quality/", views.LabelerQualityApi.as_view(), name="api-labeler-quality"),
    path("vendors/<int:vendor_id>/quality/", views.VendorQualityApi.as_view(), name="api-vendor-quality"),
]
