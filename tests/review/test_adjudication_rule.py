"""When do k human labels need an adjudicator?"""

import pytest

from runs.routing import needs_adjudication

VIOLATING = frozenset({"insult", "threat"})


@pytest.mark.parametrize(("labels", "rule", "expected"), [
    (["insult", "insult"], "no_majority", False),
    (["insult", "threat"], "no_majority", True),
    (["insult", "insult", "threat"], "no_majority", False),
    (["insult", "threat", "none"], "no_majority", True),
    (["insult", "insult", "threat"], "any_violating_dissent", True),
    (["none", "other"], "any_violating_dissent", False),
    (["none", "none"], "any_violating_dissent", False),
])
def test_needs_adjudication(labels, rule, expected):
    assert needs_adjudication(labels, VIOLATING, rule) is expected
