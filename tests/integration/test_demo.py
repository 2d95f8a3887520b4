"""``manage.py demo`` (what ``make demo`` runs) comes up, serves the admin, and Ctrl-C stops
every process it started."""

from __future__ import annotations

import os
import re
import signal
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


def test_demo_comes_up_and_ctrl_c_leaves_no_process_behind(tmp_path: Path) -> None:
    web, sim, redis, ls = devstack.free_port(), devstack.free_port(), devstack.free_port(), devstack.free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(TOUCHSTONE_ENV="demo", TOUCHSTONE_STATE_DIR=str(tmp_path), TOUCHSTONE_DEMO_PORT=str(web),
               TOUCHSTONE_SIM_PORT=str(sim), TOUCHSTONE_REDIS_PORT=str(redis), TOUCHSTONE_LS_PORT=str(ls),
               CELERY_BROKER_URL=f"redis://127.0.0.1:{redis}/0")
    env.pop("CELERY_RESULT_BACKEND", None)
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
        run_page = next(line.split()[-1] for line in output.splitlines() if "Run page:" in line)
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/admin/login/", timeout=5) as response:
            assert response.status == 200 and b"Touchstone" in response.read()
        assert run_page.startswith(f"http://127.0.0.1:{web}/runs/")

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
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
