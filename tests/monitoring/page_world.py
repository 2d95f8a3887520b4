"""A monitor with 14 daily cycles made directly as rows (no runs are executed): estimates of
``insult`` and ``any violation`` by hajek and ppi++ (with the human-only estimate beside PPI),
a known prevalence that rises on day 9, a reference series (the truth), the prompt-change
overlap on two days (a second policy version's run on the same sample), audit and gold
agreement, cost, an alert on the rise, and two cycles not done (one waiting, with its reason)."""

from __future__ import annotations

import datetime
import random
from decimal import Decimal
from types import SimpleNamespace

from content.models import Sample
from monitoring.models import Alert, Cycle, CycleRun, CycleState, Monitor
from monitoring.services.references import monitor_reference_set
from policies.compiler import ModelSettings
from policies.models import PromptTemplateVersion
from policies.services import policy_version_create_draft, prompt_version_compile
from prevalence.models import PrevalenceEstimate
from runs.models import LabelingRun

START = datetime.date(2026, 11, 1)
DAYS = [START + datetime.timedelta(days=i) for i in range(14)]
RISE = DAYS[8]  # day 9
SPEC = {"estimates": {"estimators": ["hajek", "ppi++"], "labels": ["insult", "any violation"], "alpha": 0.05},
        "alerts": [{"name": "rising", "kind": "ci_lower_above_trailing", "label": "insult", "window": 4}],
        "sample": {"size": 400}, "audit": {"share": 0.1, "queue": None}, "labeling": {"voters": []}}


def truth(day: datetime.date, label: str) -> float:
    base = 0.06 if day < RISE else 0.14
    return base if label == "insult" else base + 0.05


def _estimate(pv, sample, run, label, estimator, value, half, *, human=None, simulated=True) -> PrevalenceEstimate:
    extra = {}
    if human is not None:
        extra = {"classical_estimate": human, "classical_se": half * 0.8, "lam": 0.9,
                 "classical_ci_low": max(0, human - half * 1.6), "classical_ci_high": human + half * 1.6}
    return PrevalenceEstimate.objects.create(
        policy_version=pv, label=label, sample=sample, run=run, estimator=estimator, estimate=value, se=half / 1.96,
        ci_low=max(0.0, value - half), ci_high=value + half, convention="Wald", alpha=0.05, n_human=40, n_llm=400,
        simulated=simulated, code_version={"version": "test"}, **extra)


def monitor_world(*, published, author, user, name: str = "harassment-daily", seed: int = 5) -> SimpleNamespace:
    rng = random.Random(seed)
    monitor = Monitor.objects.create(name=name, policy=published.policy, spec=SPEC, start_date=START, created_by=user)
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong", seed=1), acting_user=None)
    v2 = policy_version_create_draft(from_version=published, acting_user=author)
    cycles, alert = [], None
    for i, day in enumerate(DAYS):
        done = i < 12
        state = CycleState.DONE if done else (CycleState.WAITING if i == 12 else CycleState.REVIEWING)
        at = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(2), tzinfo=datetime.UTC)
        cycle = Cycle.objects.create(
            monitor=monitor, partition_date=day, state=state, stage=CycleState.LABELING if i == 12 else state,
            seed=1000 + i, audit_items=40, labels_in=40 if done else 31, cost=Decimal("0.0123") + Decimal(i) / 1000,
            reason="LLM endpoint sim unreachable since 03:10 (ConnectError); next try in 30 s" if i == 12 else "",
            drawn_at=at, labeled_at=at if done else None, reviewed_at=at if done else None,
            estimated_at=at if done else None, finished_at=at if done else None, is_backfill=i < 10)
        cycles.append(cycle)
        sample = Sample.objects.create(name=f"mon-{name}-{day}", method="uniform", seed=i, frame_size=5000,
                                       requested_size=400, size=400, expected_size=400.0)
        run = LabelingRun.objects.create(name=f"mon-{name}-{day}", sample=sample, prompt_version=prompt)
        versions = [(published, True)] + ([(v2, False)] if i in (10, 11) else [])
        for pv, primary in versions:
            cr = CycleRun.objects.create(
                cycle=cycle, policy_version=pv, prompt_version=prompt, is_primary=primary,
                run=run if primary else LabelingRun.objects.create(name=f"mon-{name}-{day}-v2", sample=sample,
                                                                    prompt_version=prompt),
                agreement={"label": "any violation",
                           "audit": {"n": 40, "agreement": 0.9 - 0.01 * (i % 3), "ci": [0.77 - 0.01 * (i % 3), 0.96]},
                           "golden_set": {"golden_set_version": "harassment-gold@1", "n": 25,
                                          "agreement": 0.88, "ci": [0.70, 0.96]}})
            if not done:
                continue
            shift = 0.0 if primary else 0.025  # the new prompt reads more as violating: a level shift
            for label in ("insult", "any violation"):
                p = truth(day, label) + shift
                ppi = p + rng.gauss(0, 0.006)
                cr.estimates.add(
                    _estimate(pv, sample, cr.run, label, "hajek", p + rng.gauss(0, 0.01), 0.035),
                    _estimate(pv, sample, cr.run, label, "ppi++", ppi, 0.02, human=p + rng.gauss(0, 0.012)))
        if i == 8:
            alert = Alert.objects.create(monitor=monitor, cycle=cycle, rule="rising", kind="ci_lower_above_trailing",
                                         label="insult", value=0.14, threshold=0.07,
                                         message="insult (ppi++): CI lower bound 12.1 % is above the trailing "
                                                 "level 6.3 % (4 cycles)")
    monitor_reference_set(monitor=monitor, label="insult", points={d: truth(d, "insult") for d in DAYS},
                          source="the demo's known prevalence", acting_user=user)
    return SimpleNamespace(monitor=monitor, cycles=cycles, alert=alert, v2=v2)
