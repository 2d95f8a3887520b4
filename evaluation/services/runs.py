"""A labeling run's decisions as a signal version.

Convention: every finished run under policy P is a version of the signal ``llm-P`` (kind
``llm_labeling``, output ``label``), linked to the run and its prompt version; its notes name the
prompt template, the voters and the routing threshold. Each decided item is one score row:
``label`` = the jury's decision label (the voters' strict majority), ``score`` = the jury's
confidence in it (the mean confidence of the voters who gave that label), ``observed_at`` = when
the run finished. Items whose decision failed (a voter failed) or has no majority label are
counted by reason in the audit event and get no row.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from evaluation.models import Signal, SignalKind, SignalOutputType, SignalScore, SignalVersion
from evaluation.services.scores import scores_insert
from evaluation.services.signals import SignalError, signal_create_unchecked, signal_version_create_unchecked
from runs.models import LabelingRun, RunStatus
from runs.selectors import item_decisions_under_policy_version
from touchstone.audit import audit_event_record
from touchstone.errors import InvalidStateTransition
from touchstone.roles import permission_require

INSERT_CHUNK = 10_000


def run_signal_name(run: LabelingRun) -> str:
    return f"llm-{run.prompt_version.policy_version.policy.slug}"


def _notes(run: LabelingRun) -> str:
    prompt = run.prompt_version
    voters = ", ".join(f"{model}@{endpoint}{' (SIMULATOR)' if simulated else ''}" for model, endpoint, simulated in
                       run.voters.order_by("position").values_list("model", "endpoint__name",
                                                                    "endpoint__is_simulator"))
    return (f"Labeling run {run.name!r}: prompt version {prompt.sha256[:12]} ({prompt.template_version}) of "
            f"{prompt.policy_version}; voters {voters}; confidence threshold {run.confidence_threshold}. "
            "Label: the jury's majority; score: its confidence in that label.")


def _run_signal(run: LabelingRun, name: str) -> Signal:
    """The run's signal, made on first use. Runs inside the caller's transaction."""
    policy = run.prompt_version.policy_version.policy
    signal = Signal.objects.filter(name=name).first()
    if signal is None:
        return signal_create_unchecked(
            name=name, kind=SignalKind.LLM_LABELING, policy=policy, output_type=SignalOutputType.LABEL,
            score_label="", owner=run.created_by, acting_user=None,
            description=f"The LLM jury's decisions of labeling runs under policy {policy.slug}: one version per run.")
    if (signal.kind, signal.policy_id, signal.output_type) != (SignalKind.LLM_LABELING, policy.pk,
                                                               SignalOutputType.LABEL):
        raise SignalError(f"signal {name!r} exists but is not an LLM labeling signal of labels under policy "
                          f"{policy.slug!r}; name another signal for run {run.name!r}")
    return signal


@transaction.atomic(durable=True)
def signal_version_from_run(*, run: LabelingRun, signal_name: str | None = None,
                            acting_user: AbstractBaseUser | None = None) -> tuple[SignalVersion, int]:
    """The signal version of a finished run, made on first call; later calls add the rows of
    items decided since (a run finishes again after its failed items are retried) and change
    nothing else. Returns (version, rows added). ``acting_user`` None: the system (the task that
    follows a run's finish).

    Raises PermissionDenied, InvalidStateTransition (the run has not finished) and SignalError
    (``signal_name`` belongs to a signal of another kind or policy)."""
    if acting_user is not None:
        permission_require(acting_user, "evaluation.add_signalversion", to="make signal versions of labeling runs")
    run = LabelingRun.objects.select_related("prompt_version__policy_version__policy",
                                             "prompt_version__template_version__template").get(pk=run.pk)
    if run.status != RunStatus.FINISHED:
        raise InvalidStateTransition(f"labeling run {run.name!r} is {run.status}: its decisions become a signal "
                                     "version when it has finished")
    version = SignalVersion.objects.select_related("signal").filter(labeling_run=run).first()
    created = version is None
    if version is None:
        signal = _run_signal(run, signal_name or run_signal_name(run))
        version = signal_version_create_unchecked(
            signal=signal, notes=_notes(run), model_card_url="", commit="", acting_user=acting_user,
            policy_version=run.prompt_version.policy_version, created_by=run.created_by, labeling_run=run,
            prompt_version=run.prompt_version)
    stored = set(SignalScore.objects.filter(version=version).values_list("item_id", flat=True))
    skipped = {"failed": 0, "no_majority": 0}
    rows = []
    for decision in item_decisions_under_policy_version(policy_version_id=run.prompt_version.policy_version_id):
        if decision.run_id != run.pk or decision.item_id in stored:
            continue
        if decision.outcome == "failed":
            skipped["failed"] += 1
        elif not decision.label:
            skipped["no_majority"] += 1
        else:
            rows.append((decision.item_id, decision.confidence, decision.label, run.finished_at))
    for start in range(0, len(rows), INSERT_CHUNK):
        scores_insert(version, rows[start:start + INSERT_CHUNK], path=f"labeling run {run.name}")
    if created or rows:
        audit_event_record(actor=acting_user, event_type="signal_version.scores_from_run", obj=version,
                           details={"labeling_run": run.name, "created": created, "added": len(rows),
                                    "skipped": skipped})
    return version, len(rows)
