"""Creating signals and versions: names, meanings, numbering, permissions, audit."""

from __future__ import annotations

import pytest

from evaluation.services import SignalError, SignalExists, signal_create, signal_version_create
from touchstone.errors import PermissionDenied
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_create_a_signal_and_number_its_versions(label_signal, ops, published):
    first = signal_version_create(signal=label_signal, acting_user=ops)
    second = signal_version_create(signal=label_signal, notes="new prompt", commit="abc", acting_user=ops)
    assert (first.number, second.number) == (1, 2)
    assert second.policy_version == published
    assert label_signal.owner == ops
    events = list(AuditEvent.objects.filter(event_type__startswith="signal").order_by("pk")
                  .values_list("event_type", "actor"))
    assert events == [("signal.created", ops.pk), ("signal_version.created", ops.pk),
                      ("signal_version.created", ops.pk)]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"name": "has space"}, SignalError, "use only letters"),
    ({"name": "a@1"}, SignalError, "use only letters"),
    ({"output_type": "score"}, SignalError, "a score signal names what it scores"),
    ({"output_type": "score", "score_label": "spam"}, SignalError, "neither 'violating' nor a label"),
    ({"score_label": "insult"}, SignalError, "only a score signal has one"),
    ({"kind": "oracle"}, SignalError, "--kind"),
])
def test_bad_signals_are_refused(published, ops, kwargs, error, match):
    spec = {"name": "s", "kind": "rule", "policy": published.policy, "output_type": "label", **kwargs}
    with pytest.raises(error, match=match):
        signal_create(acting_user=ops, **spec)


def test_a_signal_score_of_one_label_and_names_are_never_reused(published, ops, label_signal):
    signal = signal_create(name="threat-clf", kind="production_classifier", policy=published.policy,
                           output_type="score", score_label="threat", acting_user=ops)
    assert signal.score_label == "threat"
    with pytest.raises(SignalExists):
        signal_create(name="jury", kind="rule", policy=published.policy, output_type="label", acting_user=ops)


def test_version_links_are_checked(label_signal, ops):
    with pytest.raises(SignalError, match="not an http"):
        signal_version_create(signal=label_signal, model_card_url="javascript:alert(1)", acting_user=ops)


def test_pipelines_and_authors_cannot_create_signals(published, pipeline, author, label_signal):
    for user in (pipeline, author):
        with pytest.raises(PermissionDenied, match="evaluation.add_signal"):
            signal_create(name="x", kind="rule", policy=published.policy, output_type="label", acting_user=user)
        with pytest.raises(PermissionDenied, match="evaluation.add_signalversion"):
            signal_version_create(signal=label_signal, acting_user=user)
