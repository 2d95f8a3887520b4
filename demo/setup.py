"""``make demo``: seed the demo data, start the local stack, print where to look.

A second run reuses everything and changes nothing a user made: users are created once, a
policy that exists is never imported or published again (a version a user published stays
published), and prompt versions are content-addressed. Each step says what it reused.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import connection
from django.utils import timezone

from demo import devstack
from demo.pipeline import DEMO_MODEL, demo_files_prepare
from policies.compiler import policy_spec_digest
from policies.models import Policy, PolicyVersion, PolicyVersionStatus
from policies.policyfile import parse_policy_file
from policies.selectors import policy_version_published, policy_version_spec, prompt_version_list
from policies.services import policy_import, policy_version_publish, policy_version_submit
from policies.tasks import prompt_version_compile_all_task
from touchstone.envfile import env_file_write

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


def demo_users_ensure(log: Callable[[str], None] = lambda _: None) -> list[tuple[str, str, str]]:
    """Create the demo users that are missing (a user that exists is left as it is: password,
    groups); returns (username, role, what they do)."""
    User = get_user_model()
    rows, reused = [], []
    for username, group_name, description in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.is_superuser = group_name is None
            user.save()
            if group_name:
                user.groups.add(Group.objects.get(name=group_name))
        else:
            reused.append(username)
        rows.append((username, group_name or "superuser", description))
    if reused:
        log(f"reused the demo users {', '.join(reused)} (passwords and groups as you left them)")
    return rows


def _policy_seed(path: Path, author: AbstractBaseUser, approver: AbstractBaseUser) -> tuple[PolicyVersion | None, str]:
    """Seed one example policy if it is missing; never publish over a published version.
    Returns the version to show (its published one, or None) and what was done."""
    spec = parse_policy_file(path.read_text(), path=str(path))
    policy = Policy.objects.filter(slug=spec.slug).first()
    if policy is not None:
        versions = list(policy.versions.select_related("approver").order_by("-number"))
        from_file = next((v for v in versions if policy_spec_digest(policy_version_spec(v)) ==
                          policy_spec_digest(spec)), None)
        published = policy_version_published(policy=policy)
        if published is not None:
            if published == from_file:
                return published, f"reused {published} (published, same as the demo's file)"
            relation = ("newer than the demo's file" if from_file is None or published.number > from_file.number
                        else "the demo's file differs: not imported")
            return published, f"reused {published} (published by {published.approver}, {relation})"
        # A seed interrupted between import and publish is finished; anything else a user did
        # (retired the policy, started a draft) is left alone.
        newest = versions[0] if versions else None
        if newest is not None and not (from_file == newest and newest.author_id == author.pk and newest.status in
                                       (PolicyVersionStatus.DRAFT, PolicyVersionStatus.IN_REVIEW)):
            return None, (f"left {spec.slug} as it is: no published version (newest {newest} is "
                          f"{newest.get_status_display().lower()})")
    version = policy_import(text=path.read_text(), path=str(path), acting_user=author).version
    if version.status == PolicyVersionStatus.DRAFT:
        version = policy_version_submit(version=version, acting_user=author)
    version = policy_version_publish(version=version, acting_user=approver)
    return version, f"imported {version} from {path.name} as {author} and published it as {approver}"


def demo_policies_publish(log: Callable[[str], None] = lambda _: None) -> list[PolicyVersion]:
    """Import the example policies as ``author`` and publish them as ``approver``, the ones
    that are missing only; returns the published version of each."""
    User = get_user_model()
    author, approver = User.objects.get(username="author"), User.objects.get(username="approver")
    published = []
    for path in sorted(EXAMPLE_POLICIES_DIR.glob("*.md")):
        version, what = _policy_seed(path, author, approver)
        log(what)
        if version is not None:
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
    """The ports ``make demo`` uses: from the environment, else the demo settings file a
    previous run wrote, else the defaults."""

    web: int = field(default_factory=lambda: _port("TOUCHSTONE_DEMO_PORT", 8000))
    simulator: int = field(default_factory=lambda: _port("TOUCHSTONE_SIM_PORT", 8011))
    redis: int = field(default_factory=lambda: _port("TOUCHSTONE_REDIS_PORT", 6390))
    label_studio: int = field(default_factory=lambda: _port("TOUCHSTONE_LS_PORT", 8090))


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise RuntimeError(f"{name}={raw!r} (set by {_origin(name)}) is not a port number")
    return int(raw)


DEMO_LABEL_STUDIO = devstack.LabelStudioAccount(username="admin@touchstone.local", password=DEMO_PASSWORD,
                                                token="touchstone-demo-label-studio-token")
DEMO_WEBHOOK_SECRET = "touchstone-demo-webhook-secret"


def label_studio_start(stack: Stack, ports: DemoPorts, log: Callable[[str], None]) -> dict[str, str]:
    """Start the demo's Label Studio (its data persists in the state folder; the first start
    initialises it, about a minute) and point this process's settings at it."""
    data_dir = Path(settings.STATE_DIR) / "label-studio"
    logs = Path(settings.STATE_DIR) / "logs"
    if (data_dir / ".touchstone-ready").exists():
        log(f"reused Label Studio's data directory {data_dir} (projects, tasks and annotations as you left them)")
    else:
        log("initialising Label Studio's data directory (first run only, about a minute)")
        devstack.label_studio_template(template_dir=data_dir, account=DEMO_LABEL_STUDIO,
                                       log_path=logs / "label-studio-init.log")
    log(f"starting Label Studio on 127.0.0.1:{ports.label_studio}")
    stack.add(devstack.start_label_studio(port=ports.label_studio, data_dir=data_dir, account=DEMO_LABEL_STUDIO,
                                          log_path=logs / "label-studio.log"))
    urls = label_studio_settings(ports)
    for name, value in urls.items():
        setattr(settings, name, value)
    os.environ.update(urls)  # the worker and the web server started after this inherit them
    return urls


def label_studio_settings(ports: DemoPorts) -> dict[str, str]:
    return {"LABEL_STUDIO_URL": f"http://127.0.0.1:{ports.label_studio}",
            "LABEL_STUDIO_API_TOKEN": DEMO_LABEL_STUDIO.token,
            "LABEL_STUDIO_WEBHOOK_URL": f"http://127.0.0.1:{ports.web}/hooks/label-studio/",
            "LABEL_STUDIO_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET}


def _origin(name: str) -> str:
    """Where a variable's value came from: the environment or the demo settings file."""
    if name in settings.DEMO_ENV_APPLIED:
        return f"{name} in {settings.DEMO_ENV_FILE}"
    return name if name in os.environ else ""


def redis_plan(*, broker: str, ports: DemoPorts, answers: bool) -> str:
    """``start`` (the broker is the demo's Redis and it is down), ``reuse`` (something answers
    on it), or RuntimeError naming the variable that points the broker elsewhere."""
    ours = f"redis://127.0.0.1:{ports.redis}/0"
    if answers:
        return "reuse"
    if broker == ours:
        return "start"
    origin = _origin("CELERY_BROKER_URL") or "CELERY_BROKER_URL"
    raise RuntimeError(f"the broker {broker} (set by {origin}) does not answer: start it, or unset "
                       f"CELERY_BROKER_URL and the demo starts Redis on {ours} (TOUCHSTONE_REDIS_PORT)")


def demo_settings_write(ports: DemoPorts) -> Path:
    """Write ``<state>/demo.env`` (mode 0600: it holds Label Studio's token): what a second
    shell's ``manage.py`` needs to reach this stack. The settings module reads it for every
    variable not set in the environment."""
    values = {"TOUCHSTONE_DEMO_PORT": str(ports.web), "TOUCHSTONE_SIM_PORT": str(ports.simulator),
              "TOUCHSTONE_REDIS_PORT": str(ports.redis), "TOUCHSTONE_LS_PORT": str(ports.label_studio),
              **label_studio_settings(ports),
              "OPENAI_BASE_URL": f"http://127.0.0.1:{ports.simulator}/v1"}
    # The broker and the database follow the port and the state folder unless set explicitly.
    for name in ("CELERY_BROKER_URL", "DATABASE_URL"):
        if os.environ.get(name):
            values[name] = os.environ[name]
    comments = [f"Written by `make demo` at {timezone.now():%Y-%m-%d %H:%M:%S} UTC: the settings of the demo stack.",
                "manage.py reads this file for every variable not set in the environment (the environment wins).",
                f"Celery broker: {settings.CELERY_BROKER_URL}",
                f"Database: {settings.DATABASES['default']['NAME']}",
                "Management commands that change something need --user USER (e.g. --user ops) or TOUCHSTONE_USER."]
    return env_file_write(Path(settings.DEMO_ENV_FILE), values, comments=comments)


def stack_start(stack: Stack, ports: DemoPorts, log: Callable[[str], None]) -> dict[str, str]:
    """Start Label Studio, Redis (when the broker is ours and down), the simulator, a worker and
    the web server; write the demo settings file."""
    logs = Path(settings.STATE_DIR) / "logs"
    for name, port in (("web server", ports.web), ("LLM simulator", ports.simulator),
                       ("Label Studio", ports.label_studio)):
        if devstack.port_is_open(port):
            raise RuntimeError(f"port {port} for the {name} is already in use: stop what holds it "
                               f"or choose another port (see the README's configuration table)")
    broker = settings.CELERY_BROKER_URL
    plan = redis_plan(broker=broker, ports=ports, answers=devstack.redis_ping(broker))
    ls_urls = label_studio_start(stack, ports, log)
    env = {**os.environ, "TOUCHSTONE_ENV": os.environ.get("TOUCHSTONE_ENV", "demo"),
           "DJANGO_SETTINGS_MODULE": "touchstone.settings",
           "OPENAI_BASE_URL": f"http://127.0.0.1:{ports.simulator}/v1"}
    if plan == "reuse":
        log(f"using the Redis that already answers at {broker} as the broker"
            + (f" (set by {_origin('CELERY_BROKER_URL')})" if _origin("CELERY_BROKER_URL") else ""))
    else:
        log(f"starting Redis on 127.0.0.1:{ports.redis} ({devstack.redis_server_binary()})")
        stack.add(devstack.start_redis(port=ports.redis, workdir=Path(settings.STATE_DIR) / "redis",
                                       log_path=logs / "redis.log"))
    log(f"demo settings for other shells written to {demo_settings_write(ports)} (mode 0600)")
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


def prompts_compile_on_worker(versions: list[PolicyVersion], log: Callable[[str], None] = lambda _: None,
                              timeout: float = 120) -> dict[str, list[str]]:
    """Compile every published version on the Celery worker, as production would; prompt
    versions are content-addressed, so the ones that exist are reused."""
    before = {str(v): prompt_version_list(policy_version=v).count() for v in versions}
    author = get_user_model().objects.get(username="author")
    pending = {str(v): prompt_version_compile_all_task.delay(v.pk, DEMO_MODEL.__dict__, author.pk) for v in versions}
    compiled = {name: result.get(timeout=timeout) for name, result in pending.items()}
    for version in versions:
        new = prompt_version_list(policy_version=version).count() - before[str(version)]
        log(f"prompts of {version}: {len(compiled[str(version)])} compiled on the worker, "
            + (f"{new} new" if new else "all reused"))
    return compiled


def cli_prefix() -> str:
    """How to run manage.py from the repository in another shell: the state folder must be the
    demo's for the settings file to be found."""
    default = devstack.REPO_DIR / ".state"
    state = Path(settings.STATE_DIR)
    prefix = "" if state.resolve() == default.resolve() else f"TOUCHSTONE_STATE_DIR={shlex.quote(str(state))} "
    return f"{prefix}.venv/bin/python manage.py"


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
