"""Auto-labeling throughput against the simulator (latency L = 200 ms) with total concurrency
C = 64: achieved calls/s divided by the ceiling C / L. Real Redis, real Celery worker
processes, SQLite by default or DATABASE_URL (PostgreSQL) when set.

    python benchmarks/bench_autolabel.py [--items 10000] [--voters 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
STATE = Path(tempfile.mkdtemp(prefix="touchstone-bench-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{STATE / 'bench.sqlite3'}")
os.environ.update(TOUCHSTONE_STATE_DIR=str(STATE), DJANGO_SETTINGS_MODULE="touchstone.settings",
                  TOUCHSTONE_ENV="demo", LOG_LEVEL="WARNING")

import django  # noqa: E402

django.setup()
import psutil  # noqa: E402
from django.core.management import call_command  # noqa: E402

from demo import devstack  # noqa: E402

LATENCY_MS, CONCURRENCY = 200, 64
# 8 processes × 8 requests: more, smaller processes hide the gap between two chunks of one
# process (README, Throughput); BENCH_WORKER_PROCESSES=4 gives 4 × 16.
PROCESSES = int(os.environ.get("BENCH_WORKER_PROCESSES", "8"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--voters", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=250)
    args = parser.parse_args()
    calls = args.items * args.voters
    call_command("migrate", verbosity=0)

    from content.models import ContentItem
    from content.services.sampling import sample_create
    from demo.setup import demo_users_ensure
    from policies.compiler import ModelSettings
    from policies.models import PromptTemplateVersion
    from policies.services import policy_import, prompt_version_compile
    from runs.models import LabelingRun, LLMEndpoint, RunStatus
    from runs.services.runs import VoterSpec, labeling_run_create, labeling_run_start
    from touchstone.celery import app

    demo_users_ensure()
    from django.contrib.auth import get_user_model

    author = get_user_model().objects.get(username="author")
    version = policy_import(text=(ROOT / "policies/example_policies/harassment.md").read_text(), path="harassment.md",
                            acting_user=author).version
    prompt, _ = prompt_version_compile(
        policy_version=version, template_version=PromptTemplateVersion.objects.get(template__key="json_classifier"),
        settings=ModelSettings(model="sim-strong"), acting_user=None)
    ContentItem.objects.bulk_create((ContentItem(source="bench", external_id=str(i), content_sha256=f"{i:064d}",
                                                 parts={"text": f"benchmark message number {i}"})
                                     for i in range(args.items)), batch_size=2000)
    sample = sample_create(name="bench", method="uniform", size=args.items, seed=1,
                           acting_user=get_user_model().objects.get(username="ops"))

    redis_port, sim_port = devstack.free_port(), devstack.free_port()
    broker = f"redis://127.0.0.1:{redis_port}/0"
    app.conf.broker_url = app.conf.result_backend = broker
    stack = [devstack.start_redis(port=redis_port, workdir=STATE / "redis", log_path=STATE / "redis.log")]
    env = {**os.environ, "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker}
    try:
        stack.append(devstack.start_simulator(port=sim_port, log_path=STATE / "sim.log", env=env,
                                              extra_args=["--latency-ms", str(LATENCY_MS)]))
        endpoint = LLMEndpoint.objects.create(
            name="sim", base_url=f"http://127.0.0.1:{sim_port}/v1", is_simulator=True,
            max_concurrency=CONCURRENCY // PROCESSES, requests_per_minute=10_000_000, tokens_per_minute=10**12)
        worker = devstack.start_celery_worker(env=env, log_path=STATE / "worker.log", queues=["llm", "default"],
                                              concurrency=PROCESSES)
        stack.append(worker)
        devstack.wait_until(lambda: bool(app.control.ping(timeout=0.5)), timeout=60, what="worker", process=worker)
        run = labeling_run_create(name="bench", sample=sample, prompt_version=prompt, chunk_size=args.chunk_size,
                                  voters=[VoterSpec(endpoint, "sim-strong", seed=i) for i in range(args.voters)])
        peak_rss = 0.0
        cpu_before = sum(psutil.Process().cpu_times()[:2])
        started = time.perf_counter()
        labeling_run_start(run=run)
        # Poll lightly: this process shares the two cores with the workers it measures.
        while LabelingRun.objects.filter(pk=run.pk).values_list("status", flat=True)[0] == RunStatus.RUNNING:
            rss = sum(p.memory_info().rss for p in [psutil.Process(worker.pid),
                                                    *psutil.Process(worker.pid).children(recursive=True)])
            peak_rss = max(peak_rss, rss / 2**20)
            time.sleep(0.25)
        run.refresh_from_db()
        elapsed = time.perf_counter() - started
        cpu = {}
        for process in stack:
            tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            cpu[process.name] = sum(sum(p.cpu_times()[:2]) for p in tree)
        cpu["this process (polling)"] = sum(psutil.Process().cpu_times()[:2]) - cpu_before
        done = LabelingRun.objects.get(pk=run.pk).judgements.count()
        assert run.status == RunStatus.FINISHED and done == calls, (run.status, run.status_detail, done)
    finally:
        for process in reversed(stack):
            process.stop()
    rate = calls / elapsed
    ceiling = CONCURRENCY / (LATENCY_MS / 1000)
    engine = "postgresql" if "postgres" in os.environ["DATABASE_URL"] else "sqlite"
    print(f"{calls} calls ({args.items} items × {args.voters} voters) in {elapsed:.1f} s on {engine}: "
          f"{rate:.0f} calls/s, ceiling C/L = {ceiling:.0f}; peak worker RSS {peak_rss:.0f} MB "
          f"({PROCESSES} processes)")
    print(f"CPU seconds by process (2 cores = {2 * elapsed:.0f} s available): "
          + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items()))
    print(f"BENCH autolabel_throughput {rate:.0f} calls/s ratio={rate / ceiling:.2f} target=0.9")


if __name__ == "__main__":
    main()
