"""Writes of the evaluation app: signals and versions (signals.py), scores in (scores.py), a
labeling run's decisions as a signal version (runs.py)."""

from evaluation.services.comparisons import ComparisonInvalid, ComparisonOptions, comparison_create
from evaluation.services.evaluations import EvaluationInvalid, EvaluationOptions, evaluation_create
from evaluation.services.runs import signal_version_from_run
from evaluation.services.scores import (
    API_MAX_ROWS,
    ScoreRowsInvalid,
    ScoresConflict,
    signal_scores_add,
    signal_scores_import,
)
from evaluation.services.signals import SignalError, SignalExists, signal_create, signal_version_create

__all__ = [
    "API_MAX_ROWS", "ComparisonInvalid", "ComparisonOptions", "comparison_create",
    "EvaluationInvalid", "EvaluationOptions", "evaluation_create",
    "ScoreRowsInvalid", "ScoresConflict", "SignalError", "SignalExists", "signal_create",
    "signal_scores_add", "signal_scores_import", "signal_version_create", "signal_version_from_run",
]
