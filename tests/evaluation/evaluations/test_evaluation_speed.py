"""evaluation_create on 100,000 gold items with 1,000 bootstrap resamples, slices included,
reading the rows from the database: it completes with every interval. How fast is measured in
``make bench`` (benchmarks/bench_evaluation.py), not here: a shared CI machine is too noisy for
a timed assertion."""

from __future__ import annotations

import time

import numpy as np
import pytest
from django.db import connection

from evaluation.models import SignalScore
from evaluation.services import EvaluationOptions, evaluation_create

from .conftest import frozen_goldset, random_gold

pytestmark = pytest.mark.django_db
ITEMS = 100_000


def test_100k_items_with_1000_resamples_and_slices(published, score_version, ops):
    gold, countries, scores = random_gold(ITEMS, seed=5)
    version = frozen_goldset(published, [(f"e{i:06d}", g, {"country": c}, [], None)
                                         for i, (g, c) in enumerate(zip(gold, countries, strict=True))])
    ids = dict(version.items.values_list("external_id", "item_id"))
    with connection.cursor() as cursor:  # straight in: the import's own speed is measured elsewhere
        cursor.executemany(f"INSERT INTO {SignalScore._meta.db_table} (version_id, item_id, score, label) "
                           "VALUES (%s, %s, %s, '')",
                           [(score_version.pk, ids[f"e{i:06d}"], float(scores[i])) for i in range(ITEMS)])
    started = time.perf_counter()
    evaluation = evaluation_create(signal_version=score_version, golden_set_version=version,
                                   options=EvaluationOptions(threshold=0.5, slice_by="country", n_resamples=1000),
                                   acting_user=ops)
    elapsed = time.perf_counter() - started
    assert evaluation.document["coverage"]["scored"] == ITEMS
    assert evaluation.document["binary"]["f1"]["ci_low"] is not None
    assert np.isfinite(evaluation.document["scores"]["roc_auc"]["value"])
    assert {row["slice"] for row in evaluation.document["slices"]} == set(countries)
    print(f"evaluation of {ITEMS:,} items, 1,000 resamples, 3 slices: {elapsed:.2f} s")
