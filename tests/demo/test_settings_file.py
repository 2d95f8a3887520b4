"""The demo writes its settings to ``<state>/demo.env`` (mode 0600) and ``manage.py`` in any
other shell reads them (issue 13, item 13); the broker follows TOUCHSTONE_REDIS_PORT and a
broker that does not answer is blamed on the variable that was set (item 18)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from demo import devstack
from demo.setup import DEMO_LABEL_STUDIO, DemoPorts, demo_settings_write, redis_plan
from touchstone.envfile import EnvFileError, env_file_apply, env_file_read

REPO = Path(__file__).resolve().parents[2]
SHOW = ("from django.conf import settings as s; "
        "print(s.LABEL_STUDIO_URL, s.LABEL_STUDIO_API_TOKEN, s.CELERY_BROKER_URL, s.OPENAI_BASE_URL)")


def manage_py(state: Path, code: str, **env: str) -> str:
    """A fresh ``manage.py shell -c`` as a second shell would run it: no demo variables set."""
    child = {k: v for k, v in os.environ.items()
             if not k.startswith(("PYTEST_", "LABEL_STUDIO_", "CELERY_", "TOUCHSTONE_", "OPENAI_"))
             and k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    child.update(TOUCHSTONE_STATE_DIR=str(state), **env)
    done = subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code], cwd=REPO, env=child,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def state(tmp_path, settings) -> Path:
    settings.STATE_DIR, settings.DEMO_ENV_FILE = tmp_path, tmp_path / "demo.env"
    return tmp_path


def test_the_settings_file_is_0600_and_a_fresh_manage_py_reads_the_token_from_it(state) -> None:
    (state / "demo.env").write_text("# an older file, readable by all\n")
    (state / "demo.env").chmod(0o644)
    ports = DemoPorts(web=18000, simulator=18011, redis=16390, label_studio=18090)
    path = demo_settings_write(ports)
    assert path == state / "demo.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "LABEL_STUDIO_API_TOKEN" not in os.environ  # the test process itself has no token
    shown = manage_py(state, SHOW).split()
    assert shown == ["http://127.0.0.1:18090", DEMO_LABEL_STUDIO.token, "redis://127.0.0.1:16390/0",
                     "http://127.0.0.1:18011/v1"]


def test_the_environment_wins_over_the_file(state) -> None:
    demo_settings_write(DemoPorts(web=18000, simulator=18011, redis=16390, label_studio=18090))
    shown = manage_py(state, SHOW, LABEL_STUDIO_API_TOKEN="from-the-shell", TOUCHSTONE_REDIS_PORT="16391").split()
    assert shown[1] == "from-the-shell" and shown[2] == "redis://127.0.0.1:16391/0"


def test_without_a_file_nothing_is_read_and_a_bad_line_names_the_file_and_line(tmp_path) -> None:
    assert env_file_apply(tmp_path / "demo.env", {}) == {}
    (tmp_path / "demo.env").write_text("# comment\nA=1\nnot a setting\n")
    with pytest.raises(EnvFileError, match=r"demo.env:3: expected NAME=value"):
        env_file_read(tmp_path / "demo.env")
    environ = {"A": "kept"}
    (tmp_path / "demo.env").write_text("A=1\nB=x=y\n")
    assert env_file_apply(tmp_path / "demo.env", environ) == {"B": "x=y"} and environ == {"A": "kept", "B": "x=y"}


def test_a_broken_settings_file_stops_manage_py_with_its_name(tmp_path) -> None:
    (tmp_path / "demo.env").write_text("LABEL_STUDIO_URL\n")
    child = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    child.update(TOUCHSTONE_STATE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "manage.py", "queue", "status"], cwd=REPO, env=child,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert ImproperlyConfigured.__name__ in done.stderr and "demo.env:1: expected NAME=value" in done.stderr


def test_the_broker_follows_TOUCHSTONE_REDIS_PORT_and_the_demo_starts_redis_there(tmp_path) -> None:
    port = devstack.free_port()
    shown = manage_py(tmp_path, "from django.conf import settings as s; from demo.setup import DemoPorts, "
                      "redis_plan; print(s.CELERY_BROKER_URL, redis_plan(broker=s.CELERY_BROKER_URL, "
                      "ports=DemoPorts(), answers=False))", TOUCHSTONE_REDIS_PORT=str(port))
    assert shown == f"redis://127.0.0.1:{port}/0 start"


def test_a_broker_that_does_not_answer_is_blamed_on_the_variable_that_set_it(settings, monkeypatch) -> None:
    ports = DemoPorts(web=18000, simulator=18011, redis=26390, label_studio=18090)
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6399/0")
    with pytest.raises(RuntimeError, match=r"set by CELERY_BROKER_URL\) does not answer.*TOUCHSTONE_REDIS_PORT"):
        redis_plan(broker="redis://127.0.0.1:6399/0", ports=ports, answers=False)
    monkeypatch.delenv("CELERY_BROKER_URL")
    settings.DEMO_ENV_APPLIED = {"CELERY_BROKER_URL": "redis://127.0.0.1:6399/0"}
    with pytest.raises(RuntimeError, match=r"set by CELERY_BROKER_URL in .*demo\.env\)"):
        redis_plan(broker="redis://127.0.0.1:6399/0", ports=ports, answers=False)
    assert redis_plan(broker="redis://127.0.0.1:26390/0", ports=ports, answers=False) == "start"
    assert redis_plan(broker="redis://127.0.0.1:6399/0", ports=ports, answers=True) == "reuse"
