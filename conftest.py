"""Shared fixtures: users in their role groups, policies, a real Redis, a real Celery worker,
an in-process LLM simulator."""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from demo import devstack

REPO = Path(__file__).resolve().parent
EXAMPLES = REPO / "policies" / "example_policies"


def _user(django_user_model, username: str, group: str | None, **extra):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username,
                                                 is_staff=True, **extra)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def author(db, django_user_model):
    return _user(django_user_model, "author", "policy author")


@pytest.fixture
def second_author(db, django_user_model):
    return _user(django_user_model, "author2", "policy author")


@pytest.fixture
def approver(db, django_user_model):
    return _user(django_user_model, "approver", "policy approver")


@pytest.fixture
def cli_user(db, django_user_model, monkeypatch):
    """A labeling-ops user the management commands act as (through TOUCHSTONE_USER)."""
    user = _user(django_user_model, "cli-ops", "labeling ops")
    monkeypatch.setenv("TOUCHSTONE_USER", user.get_username())
    return user


@pytest.fixture
def harassment_text() -> str:
    return (EXAMPLES / "harassment.md").read_text()


@pytest.fixture
def draft(author, harassment_text):
    from policies.services import policy_import

    return policy_import(text=harassment_text, path="harassment.md", acting_user=author).version


@pytest.fixture
def published(draft, author, approver):
    from policies.services import policy_version_publish, policy_version_submit

    policy_version_submit(version=draft, acting_user=author)
    return policy_version_publish(version=draft, acting_user=approver)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A real redis-server for this test session, on a free loopback port."""
    workdir = tmp_path_factory.mktemp("redis")
    port = devstack.free_port()
    process = devstack.start_redis(port=port, workdir=workdir, log_path=workdir / "redis.log")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.stop()


def database_url_for_children() -> str:
    """DATABASE_URL of the test database, for worker processes started by a test."""
    from django.db import connection

    cfg = connection.settings_dict
    if cfg["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{cfg['NAME']}"
    host = urllib.parse.quote(cfg["HOST"] or "", safe="")
    password = f":{cfg['PASSWORD']}" if cfg["PASSWORD"] else ""
    port = f":{cfg['PORT']}" if cfg["PORT"] else ""
    return f"postgres://{cfg['USER']}{password}@{host}{port}/{cfg['NAME']}"


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_") and k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"DJANGO_SETTINGS_MODULE": "touchstone.settings",
                "DATABASE_URL": database_url_for_children(), **extra})
    return env


def celery_point_at(url: str | None, backend: str | None) -> None:
    """Point the Celery app at a broker and result backend, dropping connections it cached."""
    from touchstone.celery import app

    app.conf.broker_url, app.conf.result_backend = url, backend
    app._local.__dict__.pop("backend", None)
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def eager_celery(settings, redis_url):
    """Tasks run in-process; the rate limiter still uses the session's real Redis."""
    from touchstone.celery import app

    settings.CELERY_BROKER_URL = redis_url
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates, app.conf.broker_url, app.conf.result_backend
    celery_point_at(redis_url, redis_url)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved[:2]
    celery_point_at(*saved[2:])


@pytest.fixture
def celery_worker_process(transactional_db, redis_url, tmp_path, settings):
    """A real ``celery worker`` process on the session's Redis, using the test database."""
    from touchstone.celery import app

    saved = (app.conf.broker_url, app.conf.result_backend)
    settings.CELERY_BROKER_URL = redis_url
    celery_point_at(redis_url, redis_url)
    env = child_env(CELERY_BROKER_URL=redis_url, CELERY_RESULT_BACKEND=redis_url)
    process = devstack.start_celery_worker(env=env, log_path=tmp_path / "worker.log",
                                           queues=["default", "llm", "sync", "freeze"])
    try:
        devstack.wait_until(lambda: bool(app.control.ping(timeout=0.5)), timeout=60,
                            what="celery worker", process=process)
        yield process
    finally:
        process.stop()
        celery_point_at(*saved)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    # PBKDF2's deliberate slowness buys nothing in tests and costs ~0.3 s per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


LABEL_STUDIO_ACCOUNT = devstack.LabelStudioAccount(
    username="admin@touchstone.test", password="touchstone-test-pw", token="touchstone-test-token-0001")


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real Label Studio for this test session on a free loopback port, started from a copy
    of an initialised data directory (built once, kept under the test state folder)."""
    if not (devstack.LABEL_STUDIO_VENV / "bin" / "label-studio").exists():
        if os.environ.get("CI"):
            pytest.fail("Label Studio is required for the integration tests (make label-studio)")
        pytest.skip("Label Studio is not installed: run `make label-studio`")
    state = Path(os.environ.get("TOUCHSTONE_STATE_DIR", REPO / ".state" / "test"))
    template = devstack.label_studio_template(template_dir=state / "label-studio-template",
                                              account=LABEL_STUDIO_ACCOUNT, log_path=state / "label-studio-init.log")
    workdir = tmp_path_factory.mktemp("label-studio")
    port = devstack.free_port()
    process = devstack.start_label_studio_copy(template_dir=template, data_dir=workdir / "data", port=port,
                                               account=LABEL_STUDIO_ACCOUNT, log_path=workdir / "label-studio.log")
    try:
        yield {"url": f"http://127.0.0.1:{port}", "token": LABEL_STUDIO_ACCOUNT.token,
               "log": str(workdir / "label-studio.log"), "template": str(template)}
    finally:
        process.stop()
