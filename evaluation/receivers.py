"""The hook that makes a finished labeling run a signal version.

``runs`` sits below this app and must not call it, so this app listens instead: finishing a run
records the audit event ``labeling_run.finished`` in the finishing transaction, and once that
transaction commits the task ``evaluation.tasks.signal_version_from_run_task`` is sent. The task
is idempotent (one version per run; a run that finishes again after a retry of its failed items
appends the scores of the items decided since), so a duplicate is harmless. If the broker cannot
be reached the run is unaffected: a warning names the run, and ``manage.py signal import-run
RUN`` (which calls the same service) makes the version later.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from kombu.exceptions import OperationalError as BrokerError

from touchstone.models import AuditEvent
from touchstone.tasks import PUBLISH_RETRY_POLICY, registered_task

logger = logging.getLogger(__name__)

RUN_FINISHED = "labeling_run.finished"
TASK = "evaluation.tasks.signal_version_from_run_task"


def _send(run_id: int) -> None:
    try:
        registered_task(TASK).apply_async([run_id], ignore_result=True, retry=True,
                                           retry_policy=PUBLISH_RETRY_POLICY)
    except BrokerError as exc:
        logger.warning("labeling run #%s finished but its signal version was not queued (the task broker is "
                       "unreachable: %s); make it with `manage.py signal import-run %s`", run_id, exc, run_id)


def on_audit_event(sender: type[AuditEvent], instance: AuditEvent, created: bool, **kwargs: Any) -> None:
    if not created or instance.event_type != RUN_FINISHED or instance.object_type != "runs.LabelingRun":
        return
    run_id = int(instance.object_id)
    # robust: whatever happens here, the run's own transaction has committed and stays committed.
    transaction.on_commit(lambda: _send(run_id), robust=True)
