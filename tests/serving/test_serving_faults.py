"""Faults under load (slow): an encoder replica and the answerer replica are killed while clients send requests.

Serve must replace them; every context acknowledged with 200 must stay answerable (also after a full restart of the
app, from serve.cache_dir); a failing request must get a clean 5xx, never hang past the request timeout. The test
prints what it measured (``-s`` shows it).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import ray
import requests
from ray import serve
from ray.serve.schema import ApplicationStatus

from perk_ray.config import load_config
from serving.app import build_app

pytestmark = pytest.mark.slow

APP = "faults"
TIMEOUT_S = 30.0  # serve.request_timeout_s
CLIENT_TIMEOUT_S = TIMEOUT_S + 15  # a response later than this is a hang
CLIENTS, LOAD_S, KILL_AT_S = 3, 40.0, 10.0
QUESTIONS = ["What is the code?"]


@dataclass
class Load:
    url: str
    deadline: float
    acknowledged: list[str] = field(default_factory=list)
    results: list[tuple[float, str, int | str, float]] = field(default_factory=list)  # sent, route, status, s
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, route: str, body: dict) -> requests.Response | None:
        sent = time.monotonic()
        try:
            response = requests.post(self.url + route, json=body, timeout=CLIENT_TIMEOUT_S)
            outcome: int | str = response.status_code
        except requests.RequestException as err:
            response, outcome = None, type(err).__name__
        with self.lock:
            self.results.append((sent, route, outcome, time.monotonic() - sent))
        return response

    def client(self, index: int) -> None:
        rng = random.Random(index)
        n = 0
        while time.monotonic() < self.deadline:
            n += 1
            created = self.post("/v1/contexts", {"text": f"client {index} document {n}: the code is {n * 7}. " * 8})
            if created is not None and created.status_code == 200:
                with self.lock:
                    self.acknowledged.append(created.json()["context_id"])
            with self.lock:
                known = rng.choice(self.acknowledged) if self.acknowledged else None
            if known is not None:
                self.post("/v1/answers", {"context_id": known, "questions": QUESTIONS})


def _replica_actors(deployment: str) -> list[str]:
    return [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
            if a["name"].startswith(f"SERVE_REPLICA::{APP}#{deployment}#")]


def _kill(deployment: str) -> str:
    name = _replica_actors(deployment)[0]
    ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
    return name


def _healthy_again(killed: set[str], timeout_s: float) -> float:
    """Seconds until the app is RUNNING with as many replicas as before and none of the killed ones."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        status = serve.status().applications[APP]
        names = set(_replica_actors("Encoder") + _replica_actors("Answerer"))
        if status.status == ApplicationStatus.RUNNING and len(names) == 3 and not names & killed:
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"app not healthy {timeout_s}s after the kills: {serve.status()}")


def _answers(url: str, ids: list[str]) -> dict[str, list[str]]:
    def ask(cid: str) -> tuple[str, list[str]]:
        response = requests.post(url + "/v1/answers", json={"context_id": cid, "questions": QUESTIONS}, timeout=60)
        assert response.status_code == 200, (cid, response.status_code, response.text)
        return cid, response.json()["answers"]

    with ThreadPoolExecutor(3) as pool:
        return dict(pool.map(ask, ids))


def test_killed_replicas_are_replaced_and_acknowledged_contexts_survive(tmp_path):
    cfg = load_config("tiny", ["serve.encoder_min_replicas=2", "serve.encoder_max_replicas=2",
                               f"serve.request_timeout_s={TIMEOUT_S}", f"serve.cache_dir={tmp_path / 'cache'}"])
    ray.init(num_cpus=2, include_dashboard=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    url = f"http://127.0.0.1:{port}"
    try:
        serve.run(build_app(cfg), name=APP, route_prefix="/")
        load = Load(url, time.monotonic() + LOAD_S)
        with ThreadPoolExecutor(CLIENTS) as pool:
            clients = [pool.submit(load.client, i) for i in range(CLIENTS)]
            time.sleep(KILL_AT_S)
            killed_at = time.monotonic()
            killed = {_kill("Encoder"), _kill("Answerer")}
            recovery_s = _healthy_again(killed, 120)
            for done in clients:
                done.result()

        during = [r for r in load.results if killed_at - 5 <= r[0] <= killed_at + recovery_s]
        failed = [r for r in load.results if r[2] != 200]
        print(f"\nfault test: {len(load.results)} requests sent, {len(failed)} failed "
              f"({sorted({str(r[2]) for r in failed})}), {len(load.acknowledged)} contexts acknowledged; "
              f"replicas replaced {recovery_s:.1f}s after the kills; {len(during)} requests sent from 5 s before "
              f"the kills to the recovery, slowest {max(r[3] for r in during):.1f}s (timeout {TIMEOUT_S:g}s)")
        assert during and load.results[-1][0] > killed_at + recovery_s, "the load must span the fault"
        assert all(isinstance(r[2], int) and (r[2] == 200 or r[2] >= 500) for r in failed), failed  # no hang
        assert len(failed) <= len(load.results) // 4, failed

        before_restart = _answers(url, load.acknowledged)  # every acknowledged context, after the recovery
        serve.delete(APP)
        serve.run(build_app(cfg), name=APP, route_prefix="/")  # a full restart: adapters come from cache_dir
        assert _answers(url, load.acknowledged) == before_restart
    finally:
        serve.shutdown()
        ray.shutdown()
