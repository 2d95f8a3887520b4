from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from touchstone.views import api_not_found, health

admin.site.site_header = "Touchstone"
admin.site.site_title = "Touchstone"
admin.site.index_title = "Policies, prompts, labels and golden sets"
admin.site.site_url = "/"  # "View site": the home page

urlpatterns = [
    path("", include("home.urls")),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("", include("runs.urls")),
    path("", include("review.urls")),
    path("", include("goldsets.urls")),
    path("", include("evaluation.urls")),
    path("", include("prevalence.urls")),
    path("", include("monitoring.urls")),
    path("api/v1/", include("goldsets.api.urls")),
    path("api/v1/", include("evaluation.api.urls")),
    path("api/v1/", include("prevalence.api.urls")),
    path("api/v1/", include("review.api.urls")),
    path("api/v1/", include("monitoring.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    # Last: any other path under the API prefix (or a path parameter a pattern refused, such as a
    # negative version) is a JSON 404, like every other answer of the API.
    re_path(r"^api/v1/", api_not_found, name="api-not-found"),
]
