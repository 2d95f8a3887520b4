"""Hidden gold, labeler quality, pausing, LLM suggestions and images, against a real Label
Studio."""

from __future__ import annotations

import io
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from content.models import ContentImage, ContentItem
from review.lsconfig import annotation_result
from review.models import HiddenGoldItem, HumanLabel, Labeler, ReviewTask
from review.services.quality import hidden_gold_mark, labelers_flag
from review.services.queues import review_queue_create, review_queue_push, review_queue_sync
from runs.models import ItemDecision, LabelingRun, LLMEndpoint
from tests.content.users import sampler

pytestmark = [pytest.mark.integration, pytest.mark.django_db, pytest.mark.usefixtures("cli_user")]


def _items(prefix: str, n: int) -> list[ContentItem]:
    return ContentItem.objects.bulk_create([
        ContentItem(source=prefix, external_id=str(i), parts={"text": f"{prefix} message {i}"},
                    content_sha256=f"{prefix}{i}".encode().hex().ljust(64, "0")[:64]) for i in range(n)])


def test_hidden_gold_flags_a_labeler_and_pausing_serves_their_open_tasks_to_others(ls, published, settings):
    settings.LABELER_MIN_GOLD_ITEMS, settings.LABELER_MIN_GOLD_ACCURACY = 5, 0.7
    gold_items = _items("gold", 12)
    for n, item in enumerate(gold_items):
        hidden_gold_mark(policy_version=published, item=item, label="insult" if n % 2 else "not_harassment")
    real = _items("real", 18)
    queue = review_queue_create(name="acme-gold", policy_version=published, vendor_name="Acme BPO", overlap=2,
                                gold_share=0.25)
    result = review_queue_push(queue=queue, item_ids=[i.pk for i in real])
    assert (result.added, result.gold, result.pushed) == (24, 6, 24)  # 6 of 24 tasks are gold: 25 %
    order = list(ReviewTask.objects.filter(queue=queue).order_by("pk").values_list("is_gold", flat=True))
    assert order != sorted(order) and order != sorted(order, reverse=True)  # mixed in, not bunched
    tasks = {t.data["touchstone_task"]: t for t in ls.tasks_with_annotations(queue.ls_project_id)}
    assert len({frozenset(t.data) for t in tasks.values()}) == 1  # gold tasks carry the same fields
    assert review_queue_push(queue=queue, item_ids=[i.pk for i in real]).added == 0  # the share holds

    careless, careful, second = (ls.user_create(email=f"{n}@acme.test", name=n)
                                 for n in ("careless", "careful", "second"))
    gold = dict(HiddenGoldItem.objects.values_list("item_id", "label"))
    by_item = {t.item_id: t for t in ReviewTask.objects.filter(queue=queue)}
    for item_id, task in by_item.items():
        if task.is_gold:
            wrong = "threat" if gold[item_id] != "threat" else "insult"
            ls.annotation_create(task.ls_task_id, annotation_result(wrong), completed_by=careless)
            ls.annotation_create(task.ls_task_id, annotation_result(gold[item_id]), completed_by=careful)
    open_real = [t for t in by_item.values() if not t.is_gold][:3]
    for task in open_real:  # the careless labeler is the first on three real items
        ls.annotation_create(task.ls_task_id, annotation_result("insult"), completed_by=careless)
    review_queue_sync(queue=queue)

    (flagged,) = labelers_flag()
    assert flagged.ls_user_id == careless and "accuracy 0.00 on 6 hidden gold items" in flagged.flag_reason
    out = StringIO()
    call_command("queue", "labelers", "acme-gold", stdout=out)
    table = out.getvalue()
    assert "below 0.70" in table and "vendor Acme BPO" in table

    out = StringIO()
    call_command("queue", "pause", f"Acme BPO/{flagged.external_id}", "--reason", "gold", stdout=out)
    assert "3 unfinished tasks served to other labelers" in out.getvalue()
    assert Labeler.objects.get(pk=flagged.pk).status == "paused"
    for task in open_real:
        assert ls.sdk.tasks.get(str(task.ls_task_id)).overlap == 3  # k = 2, plus the label that no longer counts
        assert HumanLabel.objects.get(queue=queue, item_id=task.item_id).invalid_reason.startswith("not counted")

    # A label the paused labeler makes now is kept but does not count; two others complete the task.
    ls.annotation_create(open_real[0].ls_task_id, annotation_result("insult"), completed_by=careless)
    for user in (careful, second):
        ls.annotation_create(open_real[0].ls_task_id, annotation_result("insult"), completed_by=user)
    review_queue_sync(queue=queue)
    task = ReviewTask.objects.get(pk=open_real[0].pk)
    assert task.status == "complete" and task.labels == 2
    assert HumanLabel.objects.filter(queue=queue, item_id=task.item_id, is_valid=False).count() == 1

    call_command("queue", "resume", f"Acme BPO/{flagged.external_id}", stdout=StringIO())
    resumed = Labeler.objects.get(pk=flagged.pk)
    assert resumed.status == "active" and not resumed.flagged_at


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_suggestions_are_marked_simulated_and_images_reach_the_labelers_browser(ls, published, client, settings):
    from content.services.sampling import sample_create
    from policies.compiler import ModelSettings
    from policies.models import PromptTemplateVersion
    from policies.services import prompt_version_compile
    from runs.services.runs import VoterSpec, labeling_run_create

    settings.TOUCHSTONE_PUBLIC_URL = "http://touchstone.test:8000"
    items = _items("pic", 3)
    name = default_storage.save("items/test-pic.jpg", ContentFile(_jpeg()))
    ContentImage.objects.create(item=items[0], position=0, original_ref="pic.jpg", file=name, width=40, height=30)
    endpoint = LLMEndpoint.objects.create(name="sim", base_url="http://127.0.0.1:9/v1", is_simulator=True)
    prompt, _ = prompt_version_compile(
        policy_version=published, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong"), acting_user=None)
    run = labeling_run_create(name="suggesting", sample=sample_create(name="pics", method="uniform", size=3, seed=1,
                                                                              acting_user=sampler()),
                              prompt_version=prompt, voters=[VoterSpec(endpoint, "sim-strong")])
    for item in items:
        ItemDecision.objects.create(run=run, item=item, outcome="human_review", reason="low_confidence",
                                    label="insult", confidence=0.55)

    quiet = review_queue_create(name="no-hints", policy_version=published, vendor_name="Acme BPO")
    hinted = review_queue_create(name="hints", policy_version=published, vendor_name="Globex BPO",
                                 show_llm_suggestions=True)
    assert quiet.image_slots == 1  # the routed items carry one image at most
    assert review_queue_push(queue=quiet).pushed == 3 and review_queue_push(queue=hinted).pushed == 3
    assert '<Image name="image_0"' in ls.project_get(quiet.ls_project_id).label_config

    quiet_task = ls.sdk.tasks.get(str(ReviewTask.objects.get(queue=quiet, item=items[0]).ls_task_id))
    assert not quiet_task.predictions  # off by default: suggestions anchor labelers
    hinted_task = ls.sdk.tasks.get(str(ReviewTask.objects.get(queue=hinted, item=items[0]).ls_task_id))
    (prediction,) = hinted_task.predictions
    prediction = prediction if isinstance(prediction, dict) else prediction.dict()
    assert "SIMULATOR" in prediction["model_version"] and LabelingRun.objects.get(pk=run.pk).name in \
        prediction["model_version"]
    assert prediction["result"][0]["value"]["choices"] == ["insult"]

    url = quiet_task.data["image_0"]
    assert url.startswith("http://touchstone.test:8000/review-images/")
    response = client.get(url.removeprefix("http://touchstone.test:8000"))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == default_storage.open(name).read()
    assert client.get("/review-images/forged-token").status_code == 404
    assert quiet_task.data["image_0"] and ls.sdk.tasks.get(
        str(ReviewTask.objects.get(queue=quiet, item=items[1]).ls_task_id)).data["image_0"] == ""
