from django.urls import path

from prevalence.api import views

urlpatterns = [
    path("prevalence/estimates/", views.EstimateListApi.as_view(), name="api-prevalence-estimates"),
    path("prevalence/estimates/<int:estimate_id>/", views.EstimateDetailApi.as_view(),
         name="api-prevalence-estimate"),
]
