from django.urls import path

from monitoring import views

urlpatterns = [
    path("monitors/", views.monitors_page, name="monitors"),
    path("monitors/<slug:name>/", views.monitor_page, name="monitor-detail"),
    path("monitors/<slug:name>/alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge_view,
         name="monitor-alert-acknowledge"),
    path("measurement/", views.measurement_page, name="measurement"),
]
