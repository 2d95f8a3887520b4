"""A pushed task as a labeler sees it in Label Studio's own UI: the conversation in order with
the part to judge marked, the label names, the rendered instructions, and an image of a
sensitive policy blurred until hovered (loaded from Touchstone by the browser)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from conftest import LABEL_STUDIO_ACCOUNT
from content.models import ContentImage, ContentItem
from policies.services import policy_import, policy_version_publish, policy_version_submit
from review.models import HumanLabel, ReviewTask
from review.services.queues import review_queue_create, review_queue_push, review_queue_sync

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _log_in(page, label_studio) -> None:
    page.goto(f"{label_studio['url']}/user/login/")
    page.fill("input[name=email]", LABEL_STUDIO_ACCOUNT.username)
    page.fill("input[name=password]", LABEL_STUDIO_ACCOUNT.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=30_000)


@pytest.mark.parametrize("width", [1280, 390])
def test_the_labeler_reads_the_conversation_in_order_and_answers_with_label_names(
        page, label_studio, published, settings, artifacts_dir: Path, width):
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = label_studio["url"], label_studio["token"]
    item = ContentItem.objects.create(
        source="ui", external_id=f"conversation-{width}", content_sha256=f"{width:064x}", target_part="user",
        parts={"user": "you are a useless stupid bot", "agent": "Can you elaborate on that?",
               "prev_user": "", "prev_agent": "How can I help you today?"})
    queue = review_queue_create(name=f"ui-conversation-{width}", policy_version=published, vendor_name="Acme BPO",
                                overlap=1, image_slots=0, parts=["prev_agent", "prev_user", "agent", "user"])
    review_queue_push(queue=queue, item_ids=[item.pk])

    page.set_viewport_size({"width": width, "height": 1100})
    _log_in(page, label_studio)
    # The labeling stream, as a labeler works: the instructions first, then the task.
    page.goto(f"{label_studio['url']}/projects/{queue.ls_project_id}/data?labeling=1")
    page.get_by_role("heading", name="Scope").wait_for(state="visible", timeout=30_000)
    page.keyboard.press("Escape")  # close the instructions
    page.get_by_role("heading", name="Scope").wait_for(state="hidden")
    block = page.locator(".ts-item").first
    block.wait_for(state="visible", timeout=30_000)
    said = block.locator(".ts-part").all_inner_texts()
    # Oldest first, the empty earlier user turn left out, the judged turn marked.
    assert [text.split("\n")[0] for text in said] == ["Agent (earlier turn)", "Agent", "User · judge this"]
    assert "How can I help you today?" in said[0] and "useless stupid bot" in said[2]
    assert block.locator(".ts-target").inner_text().startswith("User · judge this")
    body = page.inner_text("body")
    assert "Insult or degradation" in body and "Not harassment" in body  # names, not keys
    assert "not_harassment" not in body and "_" not in block.inner_text()
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / f"20-label-studio-task-{width}.png"), full_page=True)

    # The labeler picks a name; the annotation stores its key, which the sync reads back.
    page.get_by_text("Insult or degradation").first.click()
    page.get_by_role("button", name="Submit").first.click()
    page.wait_for_timeout(1500)
    review_queue_sync(queue=queue)
    label = HumanLabel.objects.get(queue=queue)
    assert (label.label, label.is_valid) == ("insult", True)


def test_the_instructions_are_the_policy_rendered(page, label_studio, published, settings, artifacts_dir: Path):
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = label_studio["url"], label_studio["token"]
    item = ContentItem.objects.create(source="ui", external_id="instructions", content_sha256="c" * 64,
                                      parts={"text": "hello there"})
    queue = review_queue_create(name="ui-instructions", policy_version=published, vendor_name="Acme BPO",
                                image_slots=0, parts=["text"])
    review_queue_push(queue=queue, item_ids=[item.pk])
    page.set_viewport_size({"width": 1280, "height": 1000})
    _log_in(page, label_studio)
    page.goto(f"{label_studio['url']}/projects/{queue.ls_project_id}/data?labeling=1")
    heading = page.get_by_role("heading", name="Scope")
    heading.wait_for(state="visible", timeout=30_000)
    assert page.locator("strong", has_text="attacks, degrades, sexually harasses or threatens").count() == 1
    assert page.locator("li", has_text="counts as the person addressed").count() == 1
    assert "## Scope" not in page.inner_text("body") and "**attacks" not in page.inner_text("body")
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "20-label-studio-instructions.png"))


def test_a_sensitive_image_is_blurred_until_the_labeler_hovers(page, label_studio, harassment_text, author, approver,
                                                                live_server, settings, artifacts_dir: Path):
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = label_studio["url"], label_studio["token"]
    settings.TOUCHSTONE_PUBLIC_URL = live_server.url
    text = harassment_text.replace("slug: harassment\n", "slug: harassment-images\nsensitive_images: true\n", 1)
    draft = policy_import(text=text, path="harassment-images.md", acting_user=author).version
    policy_version_submit(version=draft, acting_user=author)
    published = policy_version_publish(version=draft, acting_user=approver)
    assert published.sensitive_images
    buffer = io.BytesIO()
    picture = Image.new("RGB", (320, 200), (250, 250, 250))
    for x in range(0, 320, 20):  # stripes: a blur shows
        picture.paste((200, 30, 30), (x, 0, x + 10, 200))
    picture.save(buffer, "JPEG")
    item = ContentItem.objects.create(source="ui", external_id="1", parts={"text": "look at this picture of you"},
                                      content_sha256="a" * 64)
    name = default_storage.save("items/ui-test.jpg", ContentFile(buffer.getvalue()))
    ContentImage.objects.create(item=item, position=0, original_ref="x.jpg", file=name, width=320, height=200)
    queue = review_queue_create(name="ui-blur", policy_version=published, vendor_name="Acme BPO", image_slots=1,
                                parts=["text"])
    review_queue_push(queue=queue, item_ids=[item.pk])
    task = ReviewTask.objects.get(queue=queue)

    _log_in(page, label_studio)
    page.goto(f"{label_studio['url']}/projects/{queue.ls_project_id}/data?task={task.ls_task_id}")
    image = page.locator(".ts-sensitive img").first
    image.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert "look at this picture of you" in page.inner_text("body")
    assert "Not harassment" in page.inner_text("body")  # the label choices, by name
    assert "Agent (earlier turn)" not in page.inner_text("body")  # no empty parts
    wrapper = page.locator(".ts-sensitive").first
    assert wrapper.evaluate("el => getComputedStyle(el).filter") == "blur(24px)"
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / "21-label-studio-task-blurred.png"))
    blurred = _contrast(wrapper.screenshot())
    wrapper.hover()
    page.wait_for_function("el => getComputedStyle(el).filter === 'none'", arg=wrapper.element_handle())
    page.wait_for_timeout(300)  # the transition
    page.screenshot(path=str(shots / "22-label-studio-task-revealed.png"))
    # What the labeler sees (Label Studio draws the picture on a canvas): stripes smeared, then sharp.
    assert blurred < 0.3 * _contrast(wrapper.screenshot())


def _contrast(png: bytes) -> float:
    """Mean jump between neighbouring pixels: high for sharp stripes, low once blurred."""
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
    return float(np.abs(np.diff(gray, axis=1)).mean())
