from django.apps import AppConfig


class GoldsetsConfig(AppConfig):
    name = "goldsets"
    verbose_name = "Golden sets"
