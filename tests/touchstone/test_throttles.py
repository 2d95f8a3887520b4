"""API throttle counts live in Redis, so a limit holds across web processes; with a per-process
cache a second process would start counting from zero."""

from __future__ import annotations

import pytest
import redis
from django.contrib.auth.models import Group
from django.core.cache import caches
from rest_framework.test import APIClient

from touchstone.api_tokens import api_token_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_client(django_user_model):
    user = django_user_model.objects.create_user("pipe")
    user.groups.add(Group.objects.get(name="pipeline"))
    _, key = api_token_create(user=user, name="t", scope="read")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def _another_web_process(settings) -> None:
    """What a second web process has: its own cache connections, nothing in its memory
    (changing CACHES makes Django drop every cache object it holds)."""
    caches.close_all()
    settings.CACHES = {alias: dict(config) for alias, config in settings.CACHES.items()}


@pytest.fixture
def low_rate(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"api": "3/min", "export": "3/min"}}


def test_the_limit_holds_across_processes_with_the_redis_cache(settings, redis_url, token_client, low_rate):
    location = redis_url.rsplit("/", 1)[0] + "/1"
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location,
                                   "KEY_PREFIX": "touchstone-test"}}
    redis.Redis.from_url(location).flushdb()
    assert [token_client.get("/api/v1/goldsets/").status_code for _ in range(3)] == [200, 200, 200]
    keys = redis.Redis.from_url(location).keys("touchstone-test:*throttle_api_*")
    assert len(keys) == 1  # the count is in Redis, not in this process
    _another_web_process(settings)
    refused = token_client.get("/api/v1/goldsets/")
    assert refused.status_code == 429 and "Retry-After" in refused


def test_a_per_process_cache_forgets_the_count_which_is_why_production_uses_redis(settings, token_client, low_rate):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": "throttle-test"}}
    caches["default"].clear()
    assert [token_client.get("/api/v1/goldsets/").status_code for _ in range(4)] == [200, 200, 200, 429]


def test_an_unreachable_cache_lets_requests_through_with_a_warning(settings, token_client, low_rate, caplog):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/1",
                                   "OPTIONS": {"socket_connect_timeout": 0.5}}}
    assert token_client.get("/api/v1/goldsets/").status_code == 200
    assert "cache is unreachable" in caplog.text


def test_production_and_demo_default_to_redis_db_1_of_the_broker(tmp_path) -> None:
    from tests.touchstone.test_settings import STRONG_KEY, manage

    script = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'], " \
             "settings.CACHES['default'].get('LOCATION'))"
    result = manage("shell", "-c", script, TOUCHSTONE_ENV="production", SECRET_KEY=STRONG_KEY,
                    ALLOWED_HOSTS="x.example.org", CELERY_BROKER_URL="redis://10.0.0.5:6379/0",
                    TOUCHSTONE_STATE_DIR=str(tmp_path))
    backend, location = result.stdout.splitlines()[-1].split()
    assert (backend, location) == ("django.core.cache.backends.redis.RedisCache", "redis://10.0.0.5:6379/1")
    bad = manage("check", CACHE_URL="memcached://x", TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert bad.returncode != 0 and "CACHE_URL='memcached://x'" in bad.stderr
