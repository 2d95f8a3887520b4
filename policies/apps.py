from django.apps import AppConfig


class PoliciesConfig(AppConfig):
    name = "policies"
    verbose_name = "Policies and prompts"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from policies import signals

        post_migrate.connect(signals.after_migrate, sender=self)
