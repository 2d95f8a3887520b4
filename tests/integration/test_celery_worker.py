"""A real Celery worker process on a real Redis runs a task against the test database."""

from __future__ import annotations

import pytest

from policies.models import PromptVersion
from policies.tasks import prompt_version_compile_all_task

pytestmark = [pytest.mark.integration]


def test_real_worker_compiles_prompts(celery_worker_process, published, approver) -> None:
    result = prompt_version_compile_all_task.delay(published.pk, {"model": "sim-strong", "seed": 1}, approver.pk)
    shas = result.get(timeout=60)
    assert len(shas) == 3
    assert set(PromptVersion.objects.values_list("sha256", flat=True)) == set(shas)
    # Redelivery is harmless: the same task again adds nothing.
    assert prompt_version_compile_all_task.delay(published.pk, {"model": "sim-strong", "seed": 1},
                                                 approver.pk).get(timeout=60) == shas
    assert PromptVersion.objects.count() == 3
    assert "prompt_version_compile_all_task" in celery_worker_process.log_path.read_text()
