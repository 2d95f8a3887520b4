"""Content import: counts, idempotence, errors with path:line: field, strict rollback, images."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from PIL import Image

from content.models import ContentImage, ContentImport, ContentItem, ContentItemStatus
from content.services.content import content_import
from touchstone.errors import LocatedError

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def line(external_id: str, **components: object) -> str:
    return json.dumps({"external_id": external_id, "components": components or {"text": f"text {external_id}"}})


def write(tmp_path: Path, lines: list[str], name: str = "items.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def png_bytes(size=(40, 20), color=(200, 10, 10), exif_orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    if exif_orientation is None:
        image.save(buffer, format="PNG")
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def test_good_and_bad_lines_are_counted_and_bad_ones_named(tmp_path, settings) -> None:
    settings.CONTENT_MAX_PART_CHARS = 1000
    path = write(tmp_path, [
        line("a", query="q1", response="r1"),
        '{"external_id": "b", "components": {"text": "unterminated"',
        json.dumps({"components": {"text": "no id"}}),
        line("c", query="q", tweet="unknown part"),
        line("d", text="x" * 1001),
        json.dumps({"external_id": "e", "components": {"text": "ok"}, "scores": {"toxicity": "high"}}),
        json.dumps({"external_id": "f", "components": {"query": "q", "response": "r"}, "target": "response",
                    "metadata": {"country": "NG"}, "scores": {"toxicity": 0.87}}),
        "",
        line("g", text="last"),
    ])
    job = content_import(path=path, source="test")
    assert (job.imported, job.rejected, job.duplicates, job.status) == (3, 5, 0, "finished")
    assert [(e["line"], e["field"]) for e in job.errors] == [
        (2, None), (3, "external_id"), (4, "components.tweet"), (5, "components.text"), (6, "scores.toxicity")]
    assert "malformed JSON" in job.errors[0]["reason"]
    assert "1001 characters exceeds the limit of 1000" in job.errors[3]["reason"]
    item = ContentItem.objects.get(external_id="f")
    assert item.target_part == "response" and item.scores == {"toxicity": 0.87} and item.metadata == {"country": "NG"}


def test_reimport_is_a_no_op_and_identical_bodies_are_reported(tmp_path) -> None:
    path = write(tmp_path, [line("a", text="same"), line("b", text="same"), line("c", text="other")])
    first = content_import(path=path, source="s")
    assert (first.imported, first.identical_bodies) == (3, 1)
    again = content_import(path=path, source="s")
    assert (again.imported, again.duplicates) == (0, 3)
    assert ContentItem.objects.count() == 3
    assert content_import(path=path, source="another-source").imported == 3


def test_duplicate_ids_within_one_file_and_across_batches(tmp_path) -> None:
    path = write(tmp_path, [line("a"), line("b"), line("a"), line("c"), line("b")])
    job = content_import(path=path, source="s", batch_size=2)
    assert (job.imported, job.duplicates) == (3, 2)


def test_strict_import_keeps_nothing_and_names_the_line(tmp_path) -> None:
    path = write(tmp_path, [line(str(i)) for i in range(5)] + ['{"external_id": "x"}'] + [line("z")])
    with pytest.raises(LocatedError) as exc:
        content_import(path=path, source="s", strict=True, batch_size=2)
    assert exc.value.message == f"{path}:6: components: missing, or not an object"
    assert not ContentItem.objects.exists()
    assert ContentImport.objects.get().status == ContentImport.Status.FAILED


def test_non_utf8_file_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"external_id": "a", "components": {"text": "café"}}\n'.encode("latin-1"))
    with pytest.raises(LocatedError, match="not UTF-8"):
        content_import(path=path, source="s")


def test_csv_import(tmp_path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("external_id,query,response,metadata.country,score.toxicity\n"
                    "1,hello,hi there,NG,0.1\n2,\"multi\nline\",ok,IN,notanumber\n3,,just a response,IN,\n")
    job = content_import(path=path, source="csv")
    assert (job.imported, job.rejected) == (2, 1)
    assert job.errors[0]["field"] == "score.toxicity" and job.errors[0]["line"] == 3
    assert ContentItem.objects.get(external_id="1").metadata == {"country": "NG"}
    assert ContentItem.objects.get(external_id="3").parts == {"response": "just a response"}


def test_images_are_normalised_rotated_and_stored_with_thumbnails(tmp_path) -> None:
    (tmp_path / "wide.jpg").write_bytes(png_bytes(size=(400, 100), exif_orientation=6))
    data_uri = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    path = write(tmp_path, [line("a", text="look", images=["wide.jpg", data_uri])])
    job = content_import(path=path, source="s")
    assert job.imported == 1 and job.failed_images == 0
    rotated, inline = ContentImage.objects.order_by("position")
    assert (rotated.width, rotated.height) == (100, 400)  # EXIF orientation 6: rotated 90°
    assert default_storage.exists(rotated.file) and default_storage.exists(rotated.thumbnail)
    with default_storage.open(rotated.thumbnail) as handle:
        assert max(Image.open(handle).size) <= 256
    assert (inline.width, inline.height) == (40, 20)


def test_a_bad_image_fails_its_item_not_the_import(tmp_path, settings) -> None:
    settings.CONTENT_IMAGE_MAX_PIXELS = 1000
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    (tmp_path / "bomb.png").write_bytes(png_bytes(size=(100, 100)))  # 10,000 px > the 1,000 px limit
    path = write(tmp_path, [line("corrupt", text="x", images=["corrupt.png"]),
                            line("bomb", text="y", images=["bomb.png"]),
                            line("missing", text="z", images=["nope.png"]),
                            line("fine", text="w")])
    job = content_import(path=path, source="s")
    assert (job.imported, job.rejected, job.failed_images) == (4, 0, 3)
    reasons = dict(ContentItem.objects.filter(status=ContentItemStatus.FAILED).values_list("external_id",
                                                                                            "failure_reason"))
    assert "not a readable image" in reasons["corrupt"]
    assert "decompression bomb" in reasons["bomb"]
    assert "cannot read" in reasons["missing"]
    assert ContentItem.objects.get(external_id="fine").status == ContentItemStatus.READY


class _ImageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = png_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cat.png"
    server.shutdown()


def test_http_images_need_an_allow_listed_public_host(tmp_path, settings, image_server) -> None:
    path = write(tmp_path, [line("a", text="x", images=[image_server])])
    settings.CONTENT_IMAGE_HOSTS = []
    assert content_import(path=path, source="not-listed").failed_images == 1
    settings.CONTENT_IMAGE_HOSTS = ["127.0.0.1"]
    assert content_import(path=path, source="private").failed_images == 1
    reasons = list(ContentItem.objects.values_list("failure_reason", flat=True))
    assert "not in CONTENT_IMAGE_HOSTS" in reasons[0] and "non-public address" in reasons[1]
    settings.CONTENT_IMAGE_ALLOW_PRIVATE_ADDRESSES = True
    job = content_import(path=path, source="allowed")
    assert job.failed_images == 0
    assert ContentImage.objects.get(item__source="allowed").width == 40


def test_local_images_come_only_from_regular_files_under_allowed_folders(tmp_path, settings) -> None:
    """Devices, /proc, files outside the import folder and symlinks out of it fail the item."""
    imports = tmp_path / "imports"
    imports.mkdir()
    (imports / "ok.png").write_bytes(png_bytes())
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.png").write_bytes(png_bytes())
    (imports / "link.png").symlink_to(outside / "secret.png")
    refs = {"ok": "ok.png", "zero": "file:///dev/zero", "random": "/dev/urandom", "environ": "/proc/self/environ",
            "climb": "../elsewhere/secret.png", "link": "link.png", "absolute": str(outside / "secret.png")}
    path = write(imports, [line(key, text="x", images=[ref]) for key, ref in refs.items()])
    job = content_import(path=path, source="s")
    assert (job.imported, job.failed_images) == (7, 6)
    reasons = dict(ContentItem.objects.filter(status=ContentItemStatus.FAILED).values_list("external_id",
                                                                                            "failure_reason"))
    assert set(reasons) == set(refs) - {"ok"}
    for key in ("zero", "random", "environ", "climb", "link", "absolute"):
        assert "outside the allowed image folders" in reasons[key], (key, reasons[key])

    settings.CONTENT_IMAGE_ROOTS = [str(outside)]
    again = write(imports, [line("absolute-allowed", text="x", images=[str(outside / "secret.png")])], "b.jsonl")
    assert content_import(path=again, source="s").failed_images == 0


def test_a_device_inside_an_allowed_root_is_refused_without_reading_it(tmp_path, settings) -> None:
    settings.CONTENT_IMAGE_ROOTS = ["/dev"]
    path = write(tmp_path, [line("zero", text="x", images=["file:///dev/zero"])])
    assert content_import(path=path, source="s").failed_images == 1
    assert "not a regular file" in ContentItem.objects.get(external_id="zero").failure_reason


def test_a_file_larger_than_the_limit_is_refused_after_reading_at_most_limit_plus_one(tmp_path, settings) -> None:
    settings.CONTENT_IMAGE_MAX_BYTES = 100
    (tmp_path / "big.png").write_bytes(png_bytes(size=(400, 400)))
    path = write(tmp_path, [line("big", text="x", images=["big.png"])])
    assert content_import(path=path, source="s").failed_images == 1
    assert "larger than the limit of 100 bytes" in ContentItem.objects.get(external_id="big").failure_reason


def test_one_id_with_different_content_is_reported_at_each_conflicting_line(tmp_path) -> None:
    reported = []
    path = write(tmp_path, [line("a", text="first"), line("b", text="b"), line("a", text="second"),
                            line("a", text="first"), line("a", text="third")])
    job = content_import(path=path, source="s", on_error=reported.append, batch_size=2)
    assert (job.imported, job.duplicates, job.rejected) == (2, 1, 2)
    assert [(e.line, e.field) for e in reported] == [(3, "external_id"), (5, "external_id")]
    assert "'a' was imported from line 1 of this file with different content" in str(reported[0])
    assert ContentItem.objects.get(external_id="a").parts == {"text": "first"}

    again = write(tmp_path, [line("a", text="changed later")], "later.jsonl")
    job = content_import(path=again, source="s", on_error=reported.append)
    assert job.rejected == 1 and "an earlier import into source 's'" in str(reported[-1])
    with pytest.raises(LocatedError, match="different content"):
        content_import(path=again, source="s", strict=True)
