from django.urls import path, re_path

from goldsets.api import views

VERSION = r"(?P<number>\d+|latest)"

urlpatterns = [
    path("goldsets/", views.GoldenSetListApi.as_view(), name="api-goldsets"),
    path("goldsets/<slug:name>/", views.GoldenSetDetailApi.as_view(), name="api-goldset"),
    re_path(rf"^goldsets/(?P<name>[-\w]+)/versions/{VERSION}/$", views.VersionDetailApi.as_view(),
            name="api-goldset-version"),
    re_path(rf"^goldsets/(?P<name>[-\w]+)/versions/{VERSION}/items/$", views.VersionItemsApi.as_view(),
            name="api-goldset-items"),
    re_path(rf"^goldsets/(?P<name>[-\w]+)/versions/{VERSION}/export/(?P<fmt>\w+)/$",
            views.VersionExportApi.as_view(), name="api-goldset-export"),
    path("goldsets/<slug:name>/diff/<int:old>/<int:new>/", views.VersionDiffApi.as_view(), name="api-goldset-diff"),
    path("goldsets/<slug:name>/freeze/", views.FreezeApi.as_view(), name="api-goldset-freeze"),
    path("goldsets/<slug:name>/freezes/<int:freeze_id>/", views.FreezeStatusApi.as_view(),
         name="api-goldset-freeze-status"),
]
