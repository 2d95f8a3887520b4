"""The Label Studio boundary against a real Label Studio server: projects, task import with
ids, annotations, incremental listing, webhooks, and the errors for a missing project or a
server that is down."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from demo import devstack
from review.labelstudio import LabelStudioClient, LabelStudioUnavailable, ProjectMissing
from review.lsconfig import QueueConfigSpec, QueueLabel, annotation_result, label_config, read_annotation, task_data

pytestmark = pytest.mark.integration

SPEC = QueueConfigSpec(policy="harassment@1", labels=[QueueLabel("insult", "Insult", "Demeaning words."),
                                                     QueueLabel("not_harassment", "Not harassment", "None.")],
                       rule_ids=["HAR-1", "HAR-2"], parts=["text", "context"])


def test_project_tasks_annotations_and_incremental_listing(label_studio):
    client = LabelStudioClient(label_studio["url"], label_studio["token"])
    assert client.health()
    project = client.project_create(title="touchstone test queue", label_config=label_config(SPEC),
                                    instructions="<p>Label harassment.</p>", maximum_annotations=2)
    assert client.project_get(project).maximum_annotations == 2
    tasks = [{"data": task_data({"text": f"message {i}"}, SPEC), "meta": {"touchstone_item": i}} for i in range(5)]
    ids = client.tasks_import(project, tasks)
    assert len(ids) == len(set(ids)) == 5
    before = datetime.now(UTC)
    time.sleep(1.1)
    annotation = client.annotation_create(ids[2], annotation_result("insult", ["HAR-2"], "rude"), lead_time=4.5)
    changed = list(client.tasks_with_annotations(project, updated_after=before))
    assert [t.task_id for t in changed] == [ids[2]]
    (stored,) = changed[0].annotations
    assert stored["id"] == annotation
    read = read_annotation(stored["result"], {"insult", "not_harassment"})
    assert (read.label, read.rule_ids, read.rationale, read.problem) == ("insult", ["HAR-2"], "rude", "")
    assert len(list(client.tasks_with_annotations(project))) == 5
    assert client.webhook_create(project_id=project, url="http://127.0.0.1:9/hook", secret_header="X-Touchstone",
                                 secret="s3cret") > 0


def test_a_deleted_project_and_a_stopped_server_are_named(label_studio):
    client = LabelStudioClient(label_studio["url"], label_studio["token"])
    project = client.project_create(title="to be deleted", label_config=label_config(SPEC), instructions="",
                                    maximum_annotations=1)
    client.project_delete(project)
    with pytest.raises(ProjectMissing, match=f"project {project} does not exist"):
        client.tasks_import(project, [{"data": task_data({"text": "x"}, SPEC)}])
    down = LabelStudioClient(f"http://127.0.0.1:{devstack.free_port()}", label_studio["token"], timeout=2)
    with pytest.raises(LabelStudioUnavailable, match="unreachable"):
        down.project_get(1)


def test_reading_annotations_never_maps_an_unknown_label():
    result = annotation_result("spam")
    assert read_annotation(result, {"insult"}).problem == "label 'spam' is not in the taxonomy"
    assert read_annotation([], {"insult"}).problem == "expected one label, got 0"
