"""Review-image URLs expire (issue 13, item 8): a token is good for REVIEW_IMAGE_URL_TTL, a
signed payload that is not a storage name is a 404, and pushes and syncs sign the URLs in
Label Studio's tasks again once they pass half the TTL."""

from __future__ import annotations

import io
import time
from unittest import mock

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from content.models import ContentImage, ContentItem
from review.lsconfig import annotation_result
from review.models import HumanLabel, ReviewTask
from review.services.queues import (
    _IMAGE_SALT,
    review_image_url,
    review_queue_create,
    review_queue_push,
    review_queue_sync,
)
from touchstone.models import AuditEvent

pytestmark = pytest.mark.django_db

DAY = 24 * 3600


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def _clock(when: float):
    """Django's signing sees ``when`` as now (only signing: the rest of the process keeps time)."""
    return mock.patch("django.core.signing.time", mock.Mock(time=mock.Mock(return_value=when)))


def _signed_at(when: float, payload: object) -> str:
    with _clock(when):
        return signing.dumps(payload, salt=_IMAGE_SALT, compress=True)


def _path(token: str) -> str:
    return reverse("review-image", args=[token])


@pytest.fixture
def image_name() -> str:
    return default_storage.save("items/ttl-test.jpg", ContentFile(_jpeg()))


def test_a_fresh_url_serves_the_image(client, settings, image_name):
    settings.TOUCHSTONE_PUBLIC_URL = "http://touchstone.test"
    response = client.get(review_image_url(image_name).removeprefix("http://touchstone.test"))
    assert response.status_code == 200 and b"".join(response.streaming_content) == _jpeg()


def test_a_url_signed_in_2001_is_refused(client, image_name):
    assert client.get(_path(_signed_at(978_307_200, image_name))).status_code == 404


def test_urls_expire_after_the_configured_ttl(client, settings, image_name):
    assert settings.REVIEW_IMAGE_URL_TTL == 7 * DAY  # the default
    settings.REVIEW_IMAGE_URL_TTL = 3600
    assert client.get(_path(_signed_at(time.time() - 3500, image_name))).status_code == 200
    assert client.get(_path(_signed_at(time.time() - 3700, image_name))).status_code == 404


@pytest.mark.parametrize("payload", [[1, 2], {"name": "items/x.jpg"}, 7, None, ""])
def test_a_signed_payload_that_is_not_a_name_is_a_404(client, payload):
    assert client.get(_path(_signed_at(time.time(), payload))).status_code == 404


@pytest.mark.integration
def test_push_and_sync_sign_again_the_urls_past_half_the_ttl(ls, published, settings, image_name):
    settings.TOUCHSTONE_PUBLIC_URL = "http://touchstone.test"
    items = ContentItem.objects.bulk_create([
        ContentItem(source="ttl", external_id=str(i), parts={"text": f"look {i}"}, content_sha256=f"{i + 700:064x}")
        for i in range(3)])
    for item in items[:2]:
        ContentImage.objects.create(item=item, position=0, original_ref="a.jpg", file=image_name, width=40, height=30)
    queue = review_queue_create(name="ttl-queue", policy_version=published, vendor_name="Acme BPO", overlap=1,
                                image_slots=1, parts=["text"])
    four_days_ago = time.time() - 4 * DAY  # past half of the 7-day TTL, not yet expired
    with _clock(four_days_ago):
        assert review_queue_push(queue=queue, item_ids=[items[0].pk, items[1].pk]).pushed == 2
    tasks = {t.item_id: t for t in ReviewTask.objects.filter(queue=queue)}

    def url_of(item: ContentItem) -> str:
        return ls.sdk.tasks.get(str(tasks[item.pk].ls_task_id)).data["image_0"]

    old = url_of(items[0])
    user = ls.user_create(email="ttl-labeler@acme.test", name="TTL labeler")
    ls.annotation_create(tasks[items[0].pk].ls_task_id, annotation_result("insult"), completed_by=user)

    result = review_queue_sync(queue=queue)
    assert result.resigned == 2 and result.created == 1
    new = url_of(items[0])
    assert new != old and new.startswith("http://touchstone.test/review-images/")
    for url in (new, url_of(items[1])):  # good again for the whole TTL
        assert signing.loads(url.rsplit("/", 1)[-1], salt=_IMAGE_SALT, max_age=DAY) == image_name
    task = ls.sdk.tasks.get(str(tasks[items[0].pk].ls_task_id))
    assert task.data["text"] == "look 0" and task.data["touchstone_task"] == tasks[items[0].pk].pk
    assert len(task.annotations) == 1  # the labeler's work stays
    assert HumanLabel.objects.get(queue=queue).label == "insult"
    event = AuditEvent.objects.get(event_type="review_queue.images_resigned")
    assert event.details["tasks"] == 2

    # Fresh URLs are left alone, by a sync and by a push (which signs the new task's at once).
    assert review_queue_sync(queue=queue).resigned == 0
    pushed = review_queue_push(queue=queue, item_ids=[items[2].pk])
    assert (pushed.pushed, pushed.resigned) == (1, 0)
    with _clock(time.time() + 4 * DAY):
        assert review_queue_push(queue=queue, item_ids=[]).resigned == 2  # the two with images
