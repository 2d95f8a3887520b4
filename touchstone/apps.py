from django.apps import AppConfig


class TouchstoneConfig(AppConfig):
    name = "touchstone"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from touchstone import signals

        post_migrate.connect(signals.after_migrate, sender=self)
