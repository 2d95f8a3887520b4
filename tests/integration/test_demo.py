"""``manage.py demo`` (what ``make demo`` runs) comes up, serves the admin, and Ctrl-C stops
every process it started."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from demo import devstack

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def second_shell(state: Path, *args: str) -> subprocess.CompletedProcess:
    """``manage.py`` as a new shell runs it: only the state folder set, no demo variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "TOUCHSTONE_", "LABEL_STUDIO_", "CELERY_", "OPENAI_"))
           and k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env["TOUCHSTONE_STATE_DIR"] = str(state)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.timeout(600)  # within the demo's own 480 s deadline, whatever the suite's default
def test_demo_comes_up_and_ctrl_c_leaves_no_process_behind(tmp_path: Path) -> None:
    web, sim, redis, ls = devstack.free_port(), devstack.free_port(), devstack.free_port(), devstack.free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")
           and not k.startswith("CELERY_")}
    # No CELERY_BROKER_URL: the broker follows TOUCHSTONE_REDIS_PORT (issue 13, item 18).
    env.update(TOUCHSTONE_ENV="demo", TOUCHSTONE_STATE_DIR=str(tmp_path), TOUCHSTONE_DEMO_PORT=str(web),
               TOUCHSTONE_SIM_PORT=str(sim), TOUCHSTONE_REDIS_PORT=str(redis), TOUCHSTONE_LS_PORT=str(ls))
    log = tmp_path / "demo.out"
    with log.open("w") as out:
        demo = subprocess.Popen([sys.executable, "manage.py", "demo"], cwd=REPO, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 480  # Label Studio's first start initialises its database
        while "Press Ctrl-C" not in log.read_text():
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        output = log.read_text()
        assert f"Admin:          http://127.0.0.1:{web}/admin/" in output
        assert "SIMULATOR" in output and "password 'touchstone-demo'" in output
        for slug in ("adult-content", "harassment", "misinformation", "self-harm"):
            assert f"{slug}@1" in output
        assert output.count("Published  prompts:") == 4
        assert "content import: 4185 imported" in output
        assert "Labeling run [SIMULATED VOTERS]: demo-convabuse-harassment is finished: 900 judgements ok" in output
        assert f"Label Studio:   http://127.0.0.1:{ls}/" in output and "SIMULATED labelers answered" in output
        assert "acme-bpo" in output and "globex-bpo" in output and "convabuse-experts" in output
        assert "hidden gold: 200 items" in output and "vendor Acme BPO: accuracy on" in output
        escalated = re.search(r"(\d+) disagreements sent to convabuse-experts; the SIMULATED adjudicator decided (\d+)",
                              output)
        assert escalated and int(escalated[1]) > 0 and escalated[1] == escalated[2], output
        # Measurement on the golden set (issue 14) and prevalence (issue 15), SIMULATED where so.
        assert "Measured on harassment-convabuse v1" in output, output
        assert "production classifier (SIMULATED) = harassment-classifier-simulated@1" in output, output
        assert f"http://127.0.0.1:{web}/evaluations/" in output and f"http://127.0.0.1:{web}/comparisons/" in output
        assert "prompt templates compared" in output and "ΔF1" in output, output
        assert "Prevalence in the ConvAbuse frame (N 4185" in output and "LLM labels from SIMULATED voters" in output
        assert re.search(r"any violation +truth 0\.\d{3}", output) and "ppi++ 0." in output, output
        assert "candidate harassment@2 PASSES" in output and "candidate harassment@3 FAILS" in output, output
        assert "/admin/policies/policyversion/" in output and "transition/publish/" in output
        # The monitor (issue 16): 14 days, each estimate beside the truth, an alert on the rise.
        assert "Monitor harassment-convabuse-daily (harassment, daily, 14 partitions" in output, output
        assert "LLM labels from a SIMULATED voter" in output
        assert f"page: http://127.0.0.1:{web}/monitors/harassment-convabuse-daily/" in output
        days = re.findall(r"^    day +(\d+) \d{4}-\d{2}-\d{2}  truth (0\.\d{3})  "
                          r"ppi\+\+ 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\] · hajek .*?(  ALERT .*)?$", output, re.M)
        assert [int(d[0]) for d in days] == list(range(1, 15)), output
        assert all(float(t) < 0.2 for _, t, _ in days[:8]) and all(float(t) > 0.25 for _, t, _ in days[8:]), days
        assert any(alert for _, _, alert in days[8:]), days
        fired = re.search(r"alerts fired: (\d+); first: any violation", output)
        assert fired and int(fired[1]) > 0, output
        assert "truth: any violation, known by construction: the demo's partitions" in output
        for command in ("monitor show harassment-convabuse-daily", "monitor run-now harassment-convabuse-daily"):
            assert command in output, output
        run_page = next(line.split()[-1] for line in output.splitlines() if "Run page:" in line)
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/admin/login/", timeout=5) as response:
            assert response.status == 200 and b"Touchstone" in response.read()
        assert run_page.startswith(f"http://127.0.0.1:{web}/runs/")
        assert f"starting Redis on 127.0.0.1:{redis}" in output

        # A second shell, with none of the demo's variables, reaches the stack (issue 13, item 13).
        assert stat.S_IMODE((tmp_path / "demo.env").stat().st_mode) == 0o600
        status = second_shell(tmp_path, "queue", "status", "acme-bpo")
        assert status.returncode == 0 and "acme-bpo" in status.stdout, status.stderr
        synced = second_shell(tmp_path, "queue", "sync", "acme-bpo")
        assert synced.returncode == 0, synced.stderr

        children = psutil.Process(demo.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "redis-server" in names and "celery" in names and "simulator" in names
        assert "label-studio" in names
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C does to the foreground process group
        assert demo.wait(timeout=60) == 0, log.read_text()
        time.sleep(0.5)
        alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        assert alive == [], [c.cmdline() for c in alive]
        assert "stopped." in log.read_text()

        # A second run reuses everything (issue 13, item 12).
        again = subprocess.run([sys.executable, "manage.py", "demo", "--exit-when-ready"], cwd=REPO, env=env,
                               capture_output=True, text=True, timeout=480)
        assert again.returncode == 0, again.stdout + again.stderr
        for line in ("reused harassment@1 (published, same as the demo's file)", "content already imported (import #",
                     "labels already imported (import #", "reused run 'demo-convabuse-harassment' (finished)",
                     "reused queue acme-bpo (", "reused golden set harassment-convabuse v1",
                     "reused 14 daily partitions", "reused monitor harassment-convabuse-daily (14 of 14 cycles done"):
            assert line in again.stdout, again.stdout
        assert "SIMULATED labelers answered" not in again.stdout and "freezing" not in again.stdout
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
