"""API throttles whose counts live in the shared cache (Redis in production and the demo), so a
limit holds across every web process. If the cache cannot be reached the request goes through
and a warning is logged: an outage of the counter store must not take the API down with it."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

logger = logging.getLogger(__name__)


class SharedScopedRateThrottle(ScopedRateThrottle):
    @property
    def THROTTLE_RATES(self) -> dict[str, str]:  # noqa: N802 - DRF's name; read now, so settings can change
        return api_settings.DEFAULT_THROTTLE_RATES

    def allow_request(self, request: Any, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache backend failure (redis.ConnectionError, timeouts, ...)
            logger.warning("API throttle skipped: the cache is unreachable (%s)", exc)
            return True
