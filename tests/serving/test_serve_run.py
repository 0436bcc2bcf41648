"""`serve run serving.app:perk` as a user starts it: its own Ray instance, HTTP on port 8000, SIGTERM to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
URL = "http://127.0.0.1:8000"
SERVE = str(Path(sys.executable).with_name("serve"))  # the venv's CLI: CI does not put the venv on PATH


def _port_8000_free() -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no conflict
        try:
            sock.bind(("127.0.0.1", 8000))
        except OSError:
            return False
    return True


def _wait_healthy(proc: subprocess.Popen, seconds: float) -> requests.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            response = requests.get(URL + "/healthz", timeout=5)
            if response.status_code == 200:
                return response
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"no healthy app on {URL} after {seconds}s (exit code {proc.poll()})")


def _session_pids(sid: int) -> list[int]:
    """Processes of a session: Ray's workers have their own process groups but stay in the session."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except ProcessLookupError:
                pass
    return pids


def _kill_session(sid: int) -> None:
    for pid in _session_pids(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_serve_run_answers_over_http_and_stops_on_sigterm(tmp_path):
    if not _port_8000_free():
        pytest.skip("127.0.0.1:8000 (Serve's default port) is in use by another process")
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERK_")}  # no config: the tiny preset
    env.update(RAY_AUTH_MODE="disabled", PERK_OVERRIDES="serve.encoder_max_replicas=1")
    with log.open("w") as out:
        proc = subprocess.Popen([SERVE, "run", "serving.app:perk"], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health = _wait_healthy(proc, 150)
        assert "tiny" in health.json()["meta"]["note"]
        response = requests.post(URL + "/v1/answers", json={"text": "abc" * 100, "questions": ["What?"]}, timeout=60)
        assert response.status_code == 200 and len(response.json()["answers"]) == 1
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 60  # workers exit on their own once the raylet is gone
        while _session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _session_pids(proc.pid), "processes of `serve run` outlived SIGTERM by 60 s"
        with pytest.raises(requests.ConnectionError):
            requests.get(URL + "/healthz", timeout=5)
        assert "serving the 'tiny' preset" in log.read_text()
        assert "no API keys (serve.api_keys_file / PERK_API_KEYS_FILE)" in log.read_text()
    finally:
        _kill_session(proc.pid)
