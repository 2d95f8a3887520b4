from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    verbose_name = "Monitors"

    def ready(self) -> None:
        # Beat's schedule lives on the Celery app (touchstone.celery); the tick joins it here,
        # at the interval settings give, so exactly one beat process runs it.
        from django.conf import settings

        from touchstone.celery import app

        app.conf.beat_schedule = {**app.conf.beat_schedule, "monitor-tick": {
            "task": "monitoring.tasks.monitor_tick", "schedule": float(settings.MONITOR_TICK_SECONDS)}}
        # Alerts' webhook delivery: the sweep re-sends any alert that is due (never lost).
        app.conf.beat_schedule = {**app.conf.beat_schedule, "alerts-deliver-sweep": {
            "task": "monitoring.tasks.alerts_deliver_sweep", "schedule": float(settings.ALERT_WEBHOOK_SWEEP_SECONDS)}}
