from django.urls import path

from goldsets import views

urlpatterns = [
    path("goldsets/<slug:name>/", views.goldset_detail, name="goldset-detail"),
    path("goldsets/<slug:name>/v<int:number>/", views.version_detail, name="goldset-version"),
    path("goldsets/<slug:name>/v<int:number>/export.<str:fmt>", views.version_export, name="goldset-export"),
    path("goldsets/<slug:name>/diff/<int:old>/<int:new>/", views.version_diff, name="goldset-diff"),
]
