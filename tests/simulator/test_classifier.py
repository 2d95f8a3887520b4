import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from simulator.classifier import classifier_score


@pytest.mark.parametrize("skill", [0.7, 0.85, 0.95])
def test_scores_have_the_stated_roc_auc(skill):
    truth = np.arange(6000) % 5 == 0  # a 20 % prevalence
    scores = [classifier_score(item_id=f"i{n}", reference_violating=bool(y), skill=skill, seed=3)
              for n, y in enumerate(truth)]
    # the AUC's standard error at n = 6,000 and 20 % positives is below 0.01
    assert roc_auc_score(truth, scores) == pytest.approx(skill, abs=0.025)
    assert all(0.0 <= s <= 1.0 for s in scores)


def test_scores_are_deterministic_and_depend_on_the_seed_and_item():
    one = classifier_score(item_id="x", reference_violating=True, skill=0.9, seed=1)
    assert one == classifier_score(item_id="x", reference_violating=True, skill=0.9, seed=1)
    assert one != classifier_score(item_id="x", reference_violating=True, skill=0.9, seed=2)
    assert one != classifier_score(item_id="y", reference_violating=True, skill=0.9, seed=1)


@pytest.mark.parametrize("skill", [0.5, 1.0, 0.2, 1.3])
def test_skill_outside_the_open_interval_is_refused(skill):
    with pytest.raises(ValueError, match="skill"):
        classifier_score(item_id="x", reference_violating=False, skill=skill)
