"""A simulated production classifier: one score in [0, 1] per item, for demos and tests.

Scores follow the equal-variance binormal model: an item's latent value is ``±d/2 + ε`` with
``ε ~ N(0, 1)`` (plus for a violating reference label, minus otherwise) and its score is
``Φ(latent)``. The ROC AUC of such scores against the reference is ``Φ(d/√2)``, so ``skill``
*is* the classifier's ROC AUC by construction: ``d = √2·Φ⁻¹(skill)``. ε is drawn from a hash
of (seed, item id), so a score never changes between runs. Every score it gives is simulated:
callers must say so wherever it shows.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from simulator.engine import draw

_STANDARD = NormalDist()


def classifier_score(*, item_id: str, reference_violating: bool, skill: float, seed: int = 0) -> float:
    """The simulated score of one item. ``skill`` in (0.5, 1): the ROC AUC the scores have
    against ``reference_violating`` over many items."""
    if not 0.5 < skill < 1.0:
        raise ValueError(f"skill: the classifier's ROC AUC must be within (0.5, 1), not {skill}")
    separation = math.sqrt(2.0) * _STANDARD.inv_cdf(skill)
    # draw() is in [0, 1); keep it off 0 so inv_cdf stays finite.
    noise = _STANDARD.inv_cdf(min(max(draw("classifier", seed, item_id), 1e-12), 1 - 1e-12))
    latent = (separation / 2 if reference_violating else -separation / 2) + noise
    return round(_STANDARD.cdf(latent), 6)
