from django.apps import AppConfig
from django.db.models.signals import post_save


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Signals and evaluation"

    def ready(self) -> None:
        from evaluation.receivers import on_audit_event
        from touchstone.models import AuditEvent

        # A finished labeling run becomes a signal version: runs sits below this app and never
        # calls it, so the hook is the audit event the run's finish records (see receivers.py).
        post_save.connect(on_audit_event, sender=AuditEvent, dispatch_uid="evaluation.labeling_run_finished")

        # The publish gate: policies sits below this app, so it runs the checks registered with it.
        from evaluation.services.gates import publish_gate_prepublish_check
        from policies.prepublish import PUBLISH_GATE, prepublish_check_register

        prepublish_check_register(PUBLISH_GATE, publish_gate_prepublish_check)
