from django.apps import AppConfig


class PrevalenceConfig(AppConfig):
    name = "prevalence"
    verbose_name = "Prevalence estimates"
