from django.urls import path

from prevalence import views

urlpatterns = [
    path("prevalence/estimates/<int:estimate_id>/", views.estimate_detail, name="prevalence-estimate"),
    path("prevalence/<slug:policy_slug>/", views.policy_prevalence_page, name="prevalence-policy"),
]
