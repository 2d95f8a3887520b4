from django.urls import path

from evaluation import views

urlpatterns = [
    path("signals/<slug:name>/", views.signal_detail, name="signal-detail"),
    path("evaluations/<int:evaluation_id>/", views.evaluation_detail, name="evaluation-detail"),
    path("comparisons/<int:comparison_id>/", views.comparison_detail, name="comparison-detail"),
]
