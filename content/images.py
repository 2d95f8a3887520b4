"""Load, check, normalise and store item images.

Sources: a local path (relative to the import file) or ``file://`` URL naming a regular file
under the import file's folder or a root in ``CONTENT_IMAGE_ROOTS`` (symlinks resolved first, so
``../`` and links cannot leave them; devices, FIFOs and /proc files are refused), ``data:`` URIs,
and ``http(s)://`` URLs whose host is in ``CONTENT_IMAGE_HOSTS`` and does not resolve to a
private, loopback or link-local address. Every source is read through a bound of
``CONTENT_IMAGE_MAX_BYTES`` + 1 bytes, whatever its size claims to be.
Pillow verifies the file, refuses decompression bombs
(``CONTENT_IMAGE_MAX_PIXELS``), honours EXIF orientation, converts to RGB, caps the long side
and writes a JPEG plus a thumbnail into Django storage under content-addressed names.
``image_store`` never raises for a bad image: it returns the reason, which fails the item.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import ipaddress
import os
import socket
import stat
import urllib.parse
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageRejected(ValueError):
    pass


@dataclass(frozen=True)
class StoredImage:
    ref: str
    file: str = ""
    thumbnail: str = ""
    width: int | None = None
    height: int | None = None
    sha256: str = ""
    failure_reason: str = ""


def _check_host(host: str) -> None:
    if host not in settings.CONTENT_IMAGE_HOSTS:
        raise ImageRejected(f"host {host!r} is not in CONTENT_IMAGE_HOSTS")
    if settings.CONTENT_IMAGE_ALLOW_PRIVATE_ADDRESSES:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as exc:
        raise ImageRejected(f"cannot resolve {host!r}: {exc}") from exc
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise ImageRejected(f"host {host!r} resolves to a non-public address ({ip})")


def _fetch_http(url: str) -> bytes:
    host = urllib.parse.urlsplit(url).hostname or ""
    _check_host(host)
    limit = settings.CONTENT_IMAGE_MAX_BYTES
    try:
        with httpx.stream("GET", url, timeout=settings.CONTENT_IMAGE_TIMEOUT_SECONDS, follow_redirects=False) as r:
            if r.status_code != 200:
                raise ImageRejected(f"HTTP {r.status_code} from {url}")
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise ImageRejected(f"larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise ImageRejected(f"cannot download {url}: {exc}") from exc


def image_load_bytes(ref: str, *, base_dir: Path) -> bytes:
    limit = settings.CONTENT_IMAGE_MAX_BYTES
    scheme = urllib.parse.urlsplit(ref).scheme.lower()
    if scheme in ("http", "https"):
        return _fetch_http(ref)
    if scheme == "data":
        header, _, payload = ref.partition(",")
        if ";base64" not in header:
            raise ImageRejected("data: URIs must be base64-encoded")
        if len(payload) * 3 // 4 > limit:
            raise ImageRejected(f"larger than {limit} bytes")
        try:
            return base64.b64decode(payload, validate=True)
        except binascii.Error as exc:
            raise ImageRejected(f"invalid base64 in data: URI: {exc}") from exc
    if scheme == "file":
        path = Path(urllib.parse.unquote(urllib.parse.urlsplit(ref).path))
    elif scheme == "":
        path = Path(ref) if Path(ref).is_absolute() else base_dir / ref
    else:
        raise ImageRejected(f"unsupported image source scheme {scheme!r}")
    return _read_local(path, base_dir=base_dir, limit=limit)


def image_allowed_roots(base_dir: Path) -> list[Path]:
    """The folders local images may come from: the import file's folder and CONTENT_IMAGE_ROOTS."""
    return [Path(root).resolve() for root in (base_dir, *settings.CONTENT_IMAGE_ROOTS)]


def _read_local(path: Path, *, base_dir: Path, limit: int) -> bytes:
    try:
        # Resolve symlinks and ".." before the check, so neither can lead out of the roots.
        resolved = path.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise ImageRejected(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    roots = image_allowed_roots(base_dir)
    if not any(resolved.is_relative_to(root) for root in roots):
        raise ImageRejected(f"{path} is outside the allowed image folders (the import file's folder "
                            f"and CONTENT_IMAGE_ROOTS)")
    try:
        # O_NONBLOCK: opening a FIFO must not hang; fstat on the open handle closes the
        # check-then-open race.
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise ImageRejected(f"cannot read {path}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise ImageRejected(f"{path} is not a regular file")
        try:
            data = handle.read(limit + 1)  # never more than the limit + 1 byte, whatever stat says
        except OSError as exc:
            raise ImageRejected(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ImageRejected(f"larger than the limit of {limit} bytes")
    return data


def _encode_jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, optimize=True)
    return buffer.getvalue()


def image_normalise(data: bytes) -> tuple[bytes, bytes, int, int]:
    """(normalised JPEG, thumbnail JPEG, width, height); raises ImageRejected."""
    Image.MAX_IMAGE_PIXELS = settings.CONTENT_IMAGE_MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(data)) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened).convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"not a readable image: {exc}") from exc
    image.thumbnail((settings.CONTENT_IMAGE_MAX_SIDE,) * 2)
    thumb = image.copy()
    thumb.thumbnail((settings.CONTENT_IMAGE_THUMBNAIL_SIDE,) * 2)
    return _encode_jpeg(image), _encode_jpeg(thumb), image.width, image.height


def _save(name: str, data: bytes) -> str:
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    return name


def image_store(ref: str, *, base_dir: Path) -> StoredImage:
    """Load, check and store one image. Does I/O: call it outside any transaction."""
    try:
        data = image_load_bytes(ref, base_dir=base_dir)
        digest = hashlib.sha256(data).hexdigest()
        normalised, thumb, width, height = image_normalise(data)
    except ImageRejected as exc:
        return StoredImage(ref=ref, failure_reason=str(exc))
    stem = f"content/{digest[:2]}/{digest}"
    return StoredImage(ref=ref, file=_save(f"{stem}.jpg", normalised), thumbnail=_save(f"{stem}.thumb.jpg", thumb),
                       width=width, height=height, sha256=digest)
