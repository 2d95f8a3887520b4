"""A pushed task as a labeler sees it in Label Studio's own UI: the text, the label choices,
and an image of a sensitive policy blurred until hovered (loaded from Touchstone by the
browser)."""

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
from review.models import ReviewTask
from review.services.queues import review_queue_create, review_queue_push

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


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

    page.goto(f"{label_studio['url']}/user/login/")
    page.fill("input[name=email]", LABEL_STUDIO_ACCOUNT.username)
    page.fill("input[name=password]", LABEL_STUDIO_ACCOUNT.password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/user/login" not in url, timeout=30_000)
    page.goto(f"{label_studio['url']}/projects/{queue.ls_project_id}/data?task={task.ls_task_id}")
    image = page.locator(".ts-sensitive img").first
    image.wait_for(state="visible", timeout=30_000)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert "look at this picture of you" in page.inner_text("body")
    assert "not_harassment" in page.inner_text("body")  # the label choices
    assert "prev_agent" not in page.inner_text("body")  # only the queue's parts, no empty headings
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
