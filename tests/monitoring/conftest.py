"""A tiny monitored world: daily CSV partitions of 60 messages (a known share insults), the
bundled simulator as the LLM (answer key = the truth), a vendor's review queue whose push is
faked (people answer instantly with the truth, or not at all), and a monitor file."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group

from monitoring.services import cycles as cycle_services
from monitoring.services.monitors import monitor_create
from review.models import HumanLabel, Labeler, ReviewQueue, Vendor
from runs.models import LLMEndpoint
from simulator.engine import SimulatorConfig, parse_models, text_sha256
from simulator.server import serve_in_thread

ROWS = 60
DAYS = [datetime.date(2026, 11, 1) + datetime.timedelta(days=i) for i in range(5)]


def truth(day: datetime.date, i: int) -> str:
    """Insults: every 5th message before Nov 4, every 3rd from Nov 4 on (the rise)."""
    return "insult" if i % (3 if day >= datetime.date(2026, 11, 4) else 5) == 0 else "not_harassment"


def text(day: datetime.date, i: int) -> str:
    return f"message {i} of {day.isoformat()}: " + ("you are an idiot" if truth(day, i) == "insult" else "hello there")


def item_id(day: datetime.date, i: int) -> int:
    return int(day.strftime("%Y%m%d")) * 10000 + i


TRUTH = {text_sha256(text(d, i)): truth(d, i) for d in DAYS for i in range(ROWS)}
TRUTH_BY_TEXT = {text(d, i): truth(d, i) for d in DAYS for i in range(ROWS)}


def write_frames(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for day in DAYS:
        lines = ["id,text"] + [f"{item_id(day, i)},{text(day, i)}" for i in range(ROWS)]
        (folder / f"chats-{day.isoformat()}.csv").write_text("\n".join(lines) + "\n")
    return folder


MONITOR_YAML = """\
name: {name}
policy: harassment
frame:
  glob: {folder}/chats-{{date}}.csv
  parts: [text]
sample: {{size: 30, seed: 7}}
labeling:
  prompt: {{template: json_classifier, model: sim-strong, seed: 1}}
  voters:
    - {{endpoint: sim, model: sim-strong}}
    - {{endpoint: sim, model: sim-medium}}
  confidence_threshold: 0.8
  max_attempts: {max_attempts}
  chunk_size: 15
audit: {{share: 0.3, queue: acme-harassment, label_deadline_hours: {deadline}}}
estimates: {{estimators: [hajek, ppi++], labels: [insult, any violation]}}
cadence: daily
start: 2026-11-01
overlap_days: 3
alerts:
  - {{name: too-high, kind: estimate_above, label: insult, estimator: hajek, threshold: 0.25}}
  - {{name: rising, kind: ci_lower_above_trailing, label: insult, estimator: hajek, window: 3}}
  - {{name: llm-drift, kind: agreement_below, threshold: 0.999}}
"""


@pytest.fixture(scope="session")
def simulator_url():
    config = SimulatorConfig(models=parse_models(["sim-strong:0.97", "sim-medium:0.9"]), answer_key=TRUTH,
                             retry_after_seconds=0.05)
    server, _ = serve_in_thread(config)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def ops(db, django_user_model):
    user = django_user_model.objects.create_user(username="mon-ops", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="labeling ops"))
    return user


@pytest.fixture
def pipeline_user(db, django_user_model):
    user = django_user_model.objects.create_user(username="mon-pipe", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="pipeline"))
    return user


class People:
    """The fake review queue: records pushes; answers each pushed item with its truth
    (``instant``), or leaves it for ``answer`` to label later."""

    def __init__(self, published) -> None:
        self.instant = False
        self.down = False
        self.pushes: list[tuple[str, list[int]]] = []
        self.labeler = Labeler.objects.get_or_create(vendor=Vendor.objects.get(name="acme"), external_id="p1")[0]

    def push(self, *, queue, item_ids, acting_user) -> None:
        from review.labelstudio import LabelStudioUnavailable

        if self.down:
            raise LabelStudioUnavailable("Label Studio at http://127.0.0.1:9 is unreachable (import): refused")
        self.pushes.append((queue.name, list(item_ids)))
        if self.instant:
            self.answer(item_ids, policy_version=queue.policy_version)

    def answer(self, item_ids, *, policy_version) -> None:
        from content.models import ContentItem

        when = datetime.datetime(2026, 11, 10, tzinfo=datetime.UTC)
        existing = set(HumanLabel.objects.filter(item_id__in=item_ids, policy_version=policy_version)
                       .values_list("item_id", flat=True))
        HumanLabel.objects.bulk_create(
            HumanLabel(item_id=item.pk, policy_version=policy_version, labeler=self.labeler, source="import",
                       label=TRUTH_BY_TEXT[item.parts["text"]], labeled_at=when)
            for item in ContentItem.objects.filter(pk__in=item_ids) if item.pk not in existing)


@pytest.fixture
def world(live_world, eager_celery):
    """``live_world`` with Celery tasks run in-process."""
    return live_world


@pytest.fixture
def live_world(published, ops, simulator_url, tmp_path, monkeypatch, settings):
    """(make_monitor, people): monitors over the frames, the endpoint ``sim``, queue ``acme-harassment``."""
    settings.MONITOR_POLL_SECONDS = 5
    folder = write_frames(tmp_path / "frames")
    LLMEndpoint.objects.create(name="sim", base_url=simulator_url, is_simulator=True, max_concurrency=8,
                               timeout_seconds=5, price_input_per_million=Decimal("1.00"),
                               price_output_per_million=Decimal("4.00"))
    vendor = Vendor.objects.create(name="acme")
    ReviewQueue.objects.create(name="acme-harassment", policy_version=published, vendor=vendor)
    people = People(published)
    monkeypatch.setattr(cycle_services, "push_audit_items", people.push)

    def make(name: str = "harassment-daily", *, deadline: float = 48, max_attempts: int = 2,
             body_text: str | None = None):
        body = body_text or MONITOR_YAML.format(name=name, folder=folder, deadline=deadline, max_attempts=max_attempts)
        path = tmp_path / f"{name}.yaml"
        path.write_text(body)
        return monitor_create(text=body, path=str(path), acting_user=ops)

    make.folder = folder
    make.path = tmp_path
    return make, people
