from django.urls import path

from evaluation.api import views

urlpatterns = [
    path("signals/", views.SignalListApi.as_view(), name="api-signals"),
    path("signals/<slug:name>/", views.SignalDetailApi.as_view(), name="api-signal"),
    path("signals/<slug:name>/versions/<int:number>/", views.SignalVersionDetailApi.as_view(),
         name="api-signal-version"),
    path("signals/<slug:name>/versions/<int:number>/scores/", views.SignalScoresApi.as_view(),
         name="api-signal-scores"),
    path("evaluations/", views.EvaluationListApi.as_view(), name="api-evaluations"),
    path("evaluations/<int:evaluation_id>/", views.EvaluationDetailApi.as_view(), name="api-evaluation"),
    path("comparisons/", views.ComparisonListApi.as_view(), name="api-comparisons"),
    path("comparisons/<int:comparison_id>/", views.ComparisonDetailApi.as_view(), name="api-comparison"),
]
