"""``make demo``: seed the demo data, start the local stack, print where to look.

Seeding is idempotent: users are created once, policy files whose content is unchanged are
not imported again, and prompt versions are content-addressed.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection

from demo import devstack
from demo.pipeline import DEMO_MODEL, demo_files_prepare
from policies.models import PolicyVersion, PolicyVersionStatus
from policies.services import policy_import, policy_version_publish, policy_version_submit
from policies.tasks import prompt_version_compile_all_task

EXAMPLE_POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies" / "example_policies"
DEMO_PASSWORD = "touchstone-demo"
DEMO_USERS = (
    ("admin", None, "superuser: everything"),
    ("author", "policy author", "writes and edits policy drafts"),
    ("approver", "policy approver", "reviews and publishes policy versions"),
    ("ops", "labeling ops", "imports content, runs labeling"),
    ("pipeline", "pipeline", "reads published prompts and golden sets"),
)


class OutdatedDatabase(Exception):
    """The state directory's database predates the current migrations."""


# Apps whose migrations were folded into fresh initial migrations of other apps.
RETIRED_APPS = ("labeling",)


def database_layout_check() -> None:
    """Refuse a database made by an older layout (before labeling was split into content, runs
    and review), whose history the fresh migrations cannot continue."""
    if "django_migrations" not in connection.introspection.table_names():
        return
    with connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(RETIRED_APPS))
        cursor.execute(f"SELECT DISTINCT app FROM django_migrations WHERE app IN ({placeholders})", list(RETIRED_APPS))
        retired = [row[0] for row in cursor.fetchall()]
    if retired:
        raise OutdatedDatabase(
            f"the database in {settings.STATE_DIR} was made by an older Touchstone (it has migrations of the "
            f"retired app {', '.join(retired)!s}); run `make clean` and then `make demo` again (the demo "
            "data is seeded anew)")


def demo_users_ensure() -> list[tuple[str, str, str]]:
    """Create the demo users once; returns (username, role, what they do)."""
    User = get_user_model()
    rows = []
    for username, group_name, description in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_superuser = group_name is None
            user.save()
        if group_name:
            user.groups.add(Group.objects.get(name=group_name))
        rows.append((username, group_name or "superuser", description))
    return rows


def demo_policies_publish() -> list[PolicyVersion]:
    """Import the example policies as ``author`` and publish them as ``approver``."""
    User = get_user_model()
    author, approver = User.objects.get(username="author"), User.objects.get(username="approver")
    published = []
    for path in sorted(EXAMPLE_POLICIES_DIR.glob("*.md")):
        version = policy_import(text=path.read_text(), path=str(path), acting_user=author).version
        if version.status == PolicyVersionStatus.DRAFT:
            version = policy_version_submit(version=version, acting_user=author)
        if version.status == PolicyVersionStatus.IN_REVIEW:
            version = policy_version_publish(version=version, acting_user=approver)
        published.append(version)
    return published


@dataclass
class Stack:
    processes: list[devstack.ManagedProcess] = field(default_factory=list)

    def add(self, process: devstack.ManagedProcess) -> devstack.ManagedProcess:
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()


@dataclass(frozen=True)
class DemoPorts:
    web: int = int(os.environ.get("TOUCHSTONE_DEMO_PORT", "8000"))
    simulator: int = int(os.environ.get("TOUCHSTONE_SIM_PORT", "8011"))
    redis: int = int(os.environ.get("TOUCHSTONE_REDIS_PORT", "6390"))
    label_studio: int = int(os.environ.get("TOUCHSTONE_LS_PORT", "8090"))


DEMO_LABEL_STUDIO = devstack.LabelStudioAccount(username="admin@touchstone.local", password=DEMO_PASSWORD,
                                                token="touchstone-demo-label-studio-token")
DEMO_WEBHOOK_SECRET = "touchstone-demo-webhook-secret"


def label_studio_start(stack: Stack, ports: DemoPorts, log: Callable[[str], None]) -> dict[str, str]:
    """Start the demo's Label Studio (its data persists in the state folder; the first start
    initialises it, about a minute) and point this process's settings at it."""
    data_dir = Path(settings.STATE_DIR) / "label-studio"
    logs = Path(settings.STATE_DIR) / "logs"
    if not (data_dir / ".touchstone-ready").exists():
        log("initialising Label Studio's data directory (first run only, about a minute)")
        devstack.label_studio_template(template_dir=data_dir, account=DEMO_LABEL_STUDIO,
                                       log_path=logs / "label-studio-init.log")
    log(f"starting Label Studio on 127.0.0.1:{ports.label_studio}")
    stack.add(devstack.start_label_studio(port=ports.label_studio, data_dir=data_dir, account=DEMO_LABEL_STUDIO,
                                          log_path=logs / "label-studio.log"))
    urls = {"LABEL_STUDIO_URL": f"http://127.0.0.1:{ports.label_studio}",
            "LABEL_STUDIO_API_TOKEN": DEMO_LABEL_STUDIO.token,
            "LABEL_STUDIO_WEBHOOK_URL": f"http://127.0.0.1:{ports.web}/hooks/label-studio/",
            "LABEL_STUDIO_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET}
    for name, value in urls.items():
        setattr(settings, name, value)
    os.environ.update(urls)  # the worker and the web server started after this inherit them
    return urls


def stack_start(stack: Stack, ports: DemoPorts, log: Callable[[str], None]) -> dict[str, str]:
    """Start Label Studio, Redis (when the broker is ours and down), the simulator, a worker and
    the web server."""
    logs = Path(settings.STATE_DIR) / "logs"
    for name, port in (("web server", ports.web), ("LLM simulator", ports.simulator),
                       ("Label Studio", ports.label_studio)):
        if devstack.port_is_open(port):
            raise RuntimeError(f"port {port} for the {name} is already in use: stop what holds it "
                               f"or choose another port (see the README's configuration table)")
    ls_urls = label_studio_start(stack, ports, log)
    env = {**os.environ, "TOUCHSTONE_ENV": os.environ.get("TOUCHSTONE_ENV", "demo"),
           "DJANGO_SETTINGS_MODULE": "touchstone.settings",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{ports.simulator}/v1"}
    broker = settings.CELERY_BROKER_URL
    if not devstack.redis_ping(broker):
        if broker != f"redis://127.0.0.1:{ports.redis}/0":
            raise RuntimeError(f"the broker {broker} does not answer; start it or unset CELERY_BROKER_URL")
        log(f"starting Redis on 127.0.0.1:{ports.redis} ({devstack.redis_server_binary()})")
        stack.add(devstack.start_redis(port=ports.redis, workdir=Path(settings.STATE_DIR) / "redis",
                                       log_path=logs / "redis.log"))
    _, answer_key = demo_files_prepare(Path(settings.STATE_DIR) / "demo")
    log(f"starting the LLM SIMULATOR on 127.0.0.1:{ports.simulator} (answer key from ConvAbuse annotations)")
    stack.add(devstack.start_simulator(port=ports.simulator, log_path=logs / "simulator.log", env=env,
                                       extra_args=["--answer-key", str(answer_key)]))
    log("starting a Celery worker with beat (queues default, llm, sync, freeze)")
    worker = stack.add(devstack.start_celery_worker(env=env, log_path=logs / "worker.log",
                                                    queues=["default", "llm", "sync", "freeze"],
                                                    concurrency=2, hostname="demo",
                                                    beat_schedule=Path(settings.STATE_DIR) / "celerybeat-schedule"))
    log(f"starting the web server on 127.0.0.1:{ports.web}")
    web = stack.add(devstack.ManagedProcess(
        "web", devstack.python_argv("manage.py", "runserver", f"127.0.0.1:{ports.web}", "--noreload",
                                    "--insecure"), log_path=logs / "web.log", env=env))
    devstack.wait_until(lambda: devstack.http_ok(f"http://127.0.0.1:{ports.web}/health"), timeout=60,
                        what="web server", process=web)
    return {"web": f"http://127.0.0.1:{ports.web}", "llm": env["OPENAI_BASE_URL"], "logs": str(logs),
            "worker_log": str(worker.log_path), "label_studio": ls_urls["LABEL_STUDIO_URL"]}


def prompts_compile_on_worker(versions: list[PolicyVersion], timeout: float = 120) -> dict[str, list[str]]:
    """Compile every published version on the Celery worker, as production would."""
    pending = {str(v): prompt_version_compile_all_task.delay(v.pk, DEMO_MODEL.__dict__) for v in versions}
    return {name: result.get(timeout=timeout) for name, result in pending.items()}


def wait_for_interrupt(stack: Stack) -> None:
    stopping = {"now": False}

    def request_stop(signum: int, frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    while not stopping["now"]:
        for process in stack.processes:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited unexpectedly; see {process.log_path}\n"
                                   f"{process.log_tail()}")
        time.sleep(0.5)
