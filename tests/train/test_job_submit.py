"""`ray job submit -- python jobs/meta_train.py --preset tiny ...` against a local `ray start --head`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from perk_ray.engine import PerkEngine

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_dashboard(port: int, head: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert head.poll() is None, "ray start --head exited early"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise TimeoutError("the Ray dashboard did not come up")


@pytest.fixture
def ray_head():
    """A private head node (its own session, short temp dir for unix sockets), stopped by its process group only."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    gcs, dashboard = _free_port(), _free_port()
    temp_dir = tempfile.mkdtemp(prefix="rayh", dir="/tmp")
    head = subprocess.Popen([RAY, "start", "--head", "--block", f"--port={gcs}", f"--dashboard-port={dashboard}",
                             "--num-cpus=2", "--disable-usage-stats", f"--temp-dir={temp_dir}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_dashboard(dashboard, head)
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        head.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_job_submit_meta_train_leaves_a_loadable_checkpoint(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "run"
    command = [RAY, "job", "submit", "--address", address, "--", sys.executable, str(REPO / "jobs" / "meta_train.py"),
               "--preset", "tiny", "--max-steps", "2", "--output", str(out), "--no-eval", "data.train_count=8",
               "data.dev_count=2", "data.test_count=2", "outer.batch_size=2", "train.checkpoint_every=2"]
    for _ in range(90):  # the head's job agent comes up a few seconds after the dashboard
        job = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
        if "No available agent" not in job.stderr:
            break
        time.sleep(2)
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    assert "succeeded" in job.stdout
    assert "step 2/2" in job.stdout
    engine = PerkEngine.from_checkpoint(out / "final")
    assert engine.encode("The code of lemon is seven.").num_chunks == 1
