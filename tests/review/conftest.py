"""Fixtures of the review tests."""

from __future__ import annotations

import pytest

from review.labelstudio import LabelStudioClient


@pytest.fixture
def ls(label_studio, settings) -> LabelStudioClient:
    """A client of the session's real Label Studio, which the product's settings point at too."""
    settings.LABEL_STUDIO_URL, settings.LABEL_STUDIO_API_TOKEN = label_studio["url"], label_studio["token"]
    return LabelStudioClient(label_studio["url"], label_studio["token"])
