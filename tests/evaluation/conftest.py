"""Fixtures of the evaluation tests: role users, content items, a signal with a version, and a
finished labeling run built from rows (no LLM calls)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from content.models import ContentItem

ITEMS = 12


def _user(django_user_model, username: str, group: str):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def ops(db, django_user_model):
    return _user(django_user_model, "ops", "labeling ops")


@pytest.fixture
def pipeline(db, django_user_model):
    return _user(django_user_model, "pipe", "pipeline")


@pytest.fixture
def items(db):
    ContentItem.objects.bulk_create(
        ContentItem(source="t", external_id=f"i{i}", parts={"text": f"message {i}"}, target_part="text",
                    content_sha256=f"{i:064x}") for i in range(ITEMS))
    return list(ContentItem.objects.filter(source="t").order_by("pk"))


@pytest.fixture
def label_signal(published, ops):
    from evaluation.services import signal_create

    return signal_create(name="jury", kind="llm_labeling", policy=published.policy, output_type="label",
                         acting_user=ops)


@pytest.fixture
def score_signal(published, ops):
    from evaluation.services import signal_create

    return signal_create(name="clf", kind="production_classifier", policy=published.policy, output_type="score",
                         score_label="violating", acting_user=ops)


@pytest.fixture
def label_version(label_signal, ops):
    from evaluation.services import signal_version_create

    return signal_version_create(signal=label_signal, notes="first", acting_user=ops)


@pytest.fixture
def score_version(score_signal, ops):
    from evaluation.services import signal_version_create

    return signal_version_create(signal=score_signal, commit="abc123", model_card_url="https://example.org/card",
                                 acting_user=ops)


@pytest.fixture
def eager_tasks():
    """Celery tasks run in-process (no broker): apply_async runs them at once."""
    from touchstone.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved
