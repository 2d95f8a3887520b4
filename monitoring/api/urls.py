from django.urls import path

from monitoring.api import views

urlpatterns = [
    path("monitors/", views.MonitorListApi.as_view(), name="api-monitors"),
    path("monitors/<slug:name>/", views.MonitorDetailApi.as_view(), name="api-monitor"),
    path("monitors/<slug:name>/cycles/", views.CycleListApi.as_view(), name="api-monitor-cycles"),
    path("monitors/<slug:name>/cycles/<int:cycle_id>/", views.CycleDetailApi.as_view(), name="api-monitor-cycle"),
    path("monitors/<slug:name>/series/", views.SeriesApi.as_view(), name="api-monitor-series"),
    path("alerts/", views.AlertListApi.as_view(), name="api-alerts"),
    path("alerts/<int:alert_id>/", views.AlertDetailApi.as_view(), name="api-alert"),
    path("alerts/<int:alert_id>/acknowledge/", views.AlertAcknowledgeApi.as_view(), name="api-alert-acknowledge"),
]
