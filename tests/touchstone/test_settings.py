"""Production settings pass ``check --deploy``; production refuses to start without secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = "k3V9-pQ7z!xR2#mW8@tY5%uB1^nC6&jH4*sD0(fG)aL+eZ=oI_vK~yT3qN9wE7rU"


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    scrub = ("SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in scrub}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_values(tmp_path: Path) -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", TOUCHSTONE_ENV="production",
                    SECRET_KEY=STRONG_KEY, ALLOWED_HOSTS="touchstone.example.org",
                    TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_development_defaults_would_fail_the_deploy_check(tmp_path: Path) -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "security.W018" in result.stderr + result.stdout  # DEBUG on


def test_production_requires_a_secret_key(tmp_path: Path) -> None:
    result = manage("check", TOUCHSTONE_ENV="production", ALLOWED_HOSTS="x.example.org",
                    TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_bad_boolean_is_named(tmp_path: Path) -> None:
    result = manage("check", DJANGO_DEBUG="perhaps", TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert result.returncode != 0 and "DJANGO_DEBUG='perhaps'" in result.stderr


def test_production_refuses_the_published_key_and_debug(tmp_path: Path) -> None:
    insecure = manage("check", TOUCHSTONE_ENV="production", ALLOWED_HOSTS="x.example.org",
                      SECRET_KEY="django-insecure-touchstone-local-only-never-use-in-production",
                      TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert insecure.returncode != 0 and "published development key" in insecure.stderr
    debug = manage("check", TOUCHSTONE_ENV="production", ALLOWED_HOSTS="x.example.org", SECRET_KEY=STRONG_KEY,
                   DJANGO_DEBUG="true", TOUCHSTONE_STATE_DIR=str(tmp_path))
    assert debug.returncode != 0 and "DJANGO_DEBUG must be off" in debug.stderr


def test_a_bad_number_is_named_not_a_traceback_of_int(tmp_path: Path) -> None:
    for name, value in (("SECURE_HSTS_SECONDS", "abc"), ("LLM_TIMEOUT_SECONDS", "soon")):
        result = manage("check", TOUCHSTONE_STATE_DIR=str(tmp_path), **{name: value})
        assert result.returncode != 0 and f"{name}={value!r} is not a" in result.stderr, result.stderr
        assert "invalid literal" not in result.stderr


def test_celery_app_is_json_only_with_late_acks_and_queues_by_kind() -> None:
    from touchstone.celery import app

    conf = app.conf
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1 and conf.task_time_limit > conf.task_soft_time_limit
    assert {q.name for q in conf.task_queues} == {"default", "llm", "sync", "freeze"}
    assert app.amqp.router.route({}, "runs.tasks.llm_judge_chunk")["queue"].name == "llm"
    assert app.amqp.router.route({}, "goldsets.tasks.freeze_version")["queue"].name == "freeze"
    assert app.amqp.router.route({}, "policies.tasks.prompt_version_compile_all_task")["queue"].name == "default"
