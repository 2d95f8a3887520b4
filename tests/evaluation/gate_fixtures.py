"""Fixtures of the publish-gate tests: harassment@1 published, a frozen 200-item golden set
``gs`` of it, a candidate harassment@2 in review, one prompt version of each, and a label signal
with one version per prompt whose labels are right 70 % (A) and 80 % (B) of the time.

Import what you use: ``from tests.evaluation.gate_fixtures import *  # noqa: F403``."""

from __future__ import annotations

import pytest
from django.db import transaction

from evaluation.models import Signal, SignalKind, SignalOutputType
from evaluation.services import EvaluationOptions, evaluation_create, signal_scores_add
from evaluation.services.signals import signal_version_create_unchecked
from policies.compiler import ModelSettings
from policies.selectors import prompt_template_version_latest_list
from policies.services import (
    policy_publish_gate_set,
    policy_version_create_draft,
    policy_version_submit,
    prompt_version_compile,
)
from tests.evaluation.comparisons.conftest import label_arrays
from tests.evaluation.evaluations.conftest import goldset, goldset_rows  # noqa: F401  (fixtures)

GOOD, WORSE = 0.8, 0.7  # the share of right labels of each prepared label list


@pytest.fixture
def candidate(published, author):
    draft = policy_version_create_draft(from_version=published, acting_user=author, change_note="clearer threats")
    draft.text += "\nThreats include conditional threats.\n"
    draft.save()
    return policy_version_submit(version=draft, acting_user=author)


def _prompt(policy_version, user):
    template = prompt_template_version_latest_list()[0]
    return prompt_version_compile(policy_version=policy_version, template_version=template,
                                  settings=ModelSettings(model="sim-strong"), acting_user=user)[0]


@pytest.fixture
def prompts(published, candidate, author):
    return _prompt(published, author), _prompt(candidate, author)


@pytest.fixture
def llm_signal(published):
    return Signal.objects.create(name="llm-harassment", kind=SignalKind.LLM_LABELING, policy=published.policy,
                                 output_type=SignalOutputType.LABEL)


def labeled_version(signal, prompt, labels, user, *, skip=()):
    """A signal version of ``prompt`` with ``labels`` for the golden items e000…e199."""
    with transaction.atomic():  # the unchecked service runs inside its caller's transaction (it locks the signal)
        version = signal_version_create_unchecked(signal=signal, notes="", model_card_url="", commit="",
                                                  policy_version=prompt.policy_version, acting_user=user,
                                                  prompt_version=prompt)
    signal_scores_add(version=version, rows=[{"source": "g", "external_id": f"e{i:03d}", "label": label}
                                             for i, label in enumerate(labels) if i not in skip], acting_user=user)
    return version


def evaluate(version, goldset, user):  # noqa: F811
    return evaluation_create(signal_version=version, golden_set_version=goldset,
                             options=EvaluationOptions(n_resamples=200), acting_user=user)


@pytest.fixture
def versions(goldset, prompts, llm_signal, ops):  # noqa: F811
    """(published's signal version, labels right 70 %; candidate's, right 80 %), not evaluated."""
    _, worse, better = label_arrays()
    return (labeled_version(llm_signal, prompts[0], worse, ops), labeled_version(llm_signal, prompts[1], better, ops))


def set_gate(policy, author, **gate):
    gate.setdefault("golden_set", "gs")
    gate.setdefault("metric", "f1")
    return policy_publish_gate_set(policy=policy, gate=gate, acting_user=author)


__all__ = ["GOOD", "WORSE", "candidate", "evaluate", "goldset", "goldset_rows", "labeled_version", "llm_signal",
           "prompts", "set_gate", "versions"]
