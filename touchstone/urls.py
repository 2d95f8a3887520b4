from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from touchstone.views import health

admin.site.site_header = "Touchstone"
admin.site.site_title = "Touchstone"
admin.site.index_title = "Policies, prompts, labels and golden sets"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("", include("labeling.urls")),
    path("", include("goldsets.urls")),
]
