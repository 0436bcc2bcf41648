"""The app in-process (serve.run on the tiny preset): isolation, the adapter cache, bad input, timeouts, restarts."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import ray
import requests
import torch
from ray import serve

from perk_ray.config import PerkConfig, load_config
from perk_ray.engine import PerkEngine
from serving.app import build_app
from serving.deployments import ContextNotFound

APP = "perk"

# With the random tiny model each of these documents gives a different (gibberish) answer.
DOCS = ["abc" * 100, "xyz" * 100, "QRST" * 80, "mn" * 150]
QUESTIONS = ["What is the code?", "Who wrote it?"]



def serving_config(cache_dir: str, *overrides: str) -> PerkConfig:
    """The tiny preset with 2 encoders, small limits and a cache directory (inner.lr pinned: DOCS answer apart)."""
    return load_config("tiny", ["inner.lr=0.01", "serve.encoder_min_replicas=2", "serve.encoder_max_replicas=2",
                                "serve.max_questions=4", "serve.max_context_tokens=2000",
                                f"serve.cache_dir={cache_dir}", *overrides])


@dataclass
class LiveApp:
    url: str
    cfg: PerkConfig

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=120)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=60)

    def delete(self, path: str) -> requests.Response:
        return requests.delete(self.url + path, timeout=60)

    def redeploy(self, *overrides: str) -> None:
        """Deploy the app again with changed settings: every replica restarts."""
        self.cfg = serving_config(self.cfg.serve.cache_dir, *overrides)
        serve.run(build_app(self.cfg), name=APP, route_prefix="/")


@pytest.fixture(scope="module")
def live_app(tmp_path_factory) -> Iterator[LiveApp]:
    """The app on a free port of 127.0.0.1."""
    ray.init(num_cpus=2, include_dashboard=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = LiveApp(f"http://127.0.0.1:{port}", serving_config(str(tmp_path_factory.mktemp("adapters"))))
    serve.run(build_app(app.cfg), name=APP, route_prefix="/")
    yield app
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(live_app: LiveApp) -> dict[str, list[str]]:
    """The answers the same engine gives for each document alone, in this process (greedy: deterministic)."""
    torch.set_num_threads(1)
    engine = PerkEngine.from_config(live_app.cfg)
    answers = {doc: engine.answer(engine.encode(doc), QUESTIONS) for doc in DOCS}
    assert len({tuple(a) for a in answers.values()}) == len(DOCS), f"documents must answer differently: {answers}"
    return answers


def _concurrently(app: LiveApp, calls: list[tuple[str, dict]]) -> list[dict]:
    with ThreadPoolExecutor(len(calls)) as pool:
        responses = list(pool.map(lambda call: app.post(*call), calls))
    assert [r.status_code for r in responses] == [200] * len(calls), [r.text for r in responses]
    return [r.json() for r in responses]


def test_concurrent_requests_each_get_their_own_documents_answers(live_app: LiveApp, reference):
    others = [("/v1/contexts", {"text": f"other document {i}. " * 30}) for i in range(3)]
    cold = [("/v1/answers", {"text": doc, "questions": QUESTIONS}) for doc in DOCS]
    results = _concurrently(live_app, cold + others)  # other documents are being encoded at the same time
    for doc, result in zip(DOCS, results):
        assert not result["cached"] and result["answers"] == reference[doc]
    assert len({r["meta"]["encoder_replica"] for r in results}) == 2  # encoded in parallel on both replicas

    # warm: adapters multiplexed by context id on the answerer, while new documents are encoded
    ids = [r["context_id"] for r in results[: len(DOCS)]]
    warm = [("/v1/answers", {"context_id": cid, "questions": QUESTIONS}) for cid in ids]
    more = [("/v1/answers", {"text": f"new document {i}! " * 25, "questions": QUESTIONS}) for i in range(2)]
    results = _concurrently(live_app, warm + more)
    for doc, result in zip(DOCS, results):
        assert result["cached"] and result["answers"] == reference[doc]


def test_second_request_for_a_document_hits_the_cache(live_app: LiveApp):
    body = {"text": "a document to encode only once. " * 20}
    start = time.perf_counter()
    first = live_app.post("/v1/contexts", body).json()
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    second = live_app.post("/v1/contexts", body).json()
    warm_s = time.perf_counter() - start
    assert first["cached"] is False and first["meta"]["encoder_replica"] is not None
    assert second["cached"] is True and second["meta"]["encoder_replica"] is None
    assert second["context_id"] == first["context_id"] and second["encode_ms"] == first["encode_ms"]
    assert warm_s < cold_s and second["elapsed_ms"] < first["elapsed_ms"]
    answer = live_app.post("/v1/answers", {**body, "questions": QUESTIONS}).json()
    assert answer["cached"] is True and answer["timings"]["encode_ms"] == 0.0
    assert answer["meta"]["note"] and "tiny" in answer["meta"]["note"]


def test_concurrent_requests_for_one_new_document_encode_it_once(live_app: LiveApp):
    results = _concurrently(live_app, [("/v1/contexts", {"text": "shared by three clients. " * 20})] * 3)
    assert sorted(r["cached"] for r in results) == [False, True, True]
    assert len({r["context_id"] for r in results}) == 1


def test_context_lifecycle(live_app: LiveApp):
    created = live_app.post("/v1/contexts", {"text": "to be deleted. " * 20}).json()
    path = f"/v1/contexts/{created['context_id']}"
    info = live_app.get(path)
    assert info.status_code == 200 and info.json()["tokens"] == created["tokens"] == 300
    assert live_app.delete(path).status_code == 200
    assert live_app.get(path).status_code == 404
    gone = live_app.post("/v1/answers", {"context_id": created["context_id"], "questions": QUESTIONS})
    assert gone.status_code == 404 and created["context_id"] in gone.json()["detail"]


BAD_REQUESTS = [
    ("/v1/contexts", {"text": ""}, 422, "empty"),
    ("/v1/contexts", {"text": "  \n "}, 422, "empty"),
    ("/v1/contexts", {"text": "x" * 2001}, 413, "serve.max_context_tokens=2000"),
    ("/v1/answers", {"text": "y" * 2001, "questions": ["q?"]}, 413, "serve.max_context_tokens=2000"),
    ("/v1/answers", {"text": "fine", "questions": ["q?"] * 5}, 422, "serve.max_questions=4"),
    ("/v1/answers", {"text": "fine", "questions": []}, 422, "questions"),
    ("/v1/answers", {"text": "fine", "questions": [" "]}, 422, "non-blank"),
    ("/v1/answers", {"context_id": "0" * 32, "questions": ["q?"]}, 404, "unknown context_id"),
    ("/v1/answers", {"context_id": "../x", "questions": ["q?"]}, 422, "context_id"),
    ("/v1/answers", {"context_id": "0" * 32, "text": "both", "questions": ["q?"]}, 422, "exactly one"),
    ("/v1/answers", {"questions": ["q?"]}, 422, "exactly one"),
    ("/v1/contexts", {"txt": "typo"}, 422, "text"),
]


@pytest.mark.parametrize("path,body,status,message", BAD_REQUESTS)
def test_bad_request_gets_a_status_that_names_the_problem(live_app: LiveApp, path, body, status, message):
    response = live_app.post(path, body)
    assert response.status_code == status and message in response.text


def test_malformed_json_and_unknown_or_malformed_ids(live_app: LiveApp):
    bad = requests.post(live_app.url + "/v1/answers", data="{not json", timeout=60,
                        headers={"Content-Type": "application/json"})
    assert bad.status_code == 422 and "JSON" in bad.text
    assert live_app.get("/v1/contexts/" + "0" * 32).status_code == 404
    assert live_app.delete("/v1/contexts/" + "0" * 32).status_code == 404
    assert live_app.get("/v1/contexts/nope").status_code == 422
    assert live_app.delete("/v1/contexts/nope").status_code == 422


def test_app_still_answers_after_bad_requests(live_app: LiveApp, reference):
    health = live_app.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    result = live_app.post("/v1/answers", {"text": DOCS[0], "questions": QUESTIONS})
    assert result.status_code == 200 and result.json()["answers"] == reference[DOCS[0]]


def test_answerer_reports_an_adapter_missing_from_the_store(live_app: LiveApp):
    handle = serve.get_deployment_handle("Answerer", APP).options(multiplexed_model_id="f" * 64)
    with pytest.raises(ContextNotFound):
        handle.answer.remote(QUESTIONS).result(timeout_s=60)


def test_restart_reuses_cache_dir_and_timeout_gives_504(live_app: LiveApp, reference):
    """Last test of the module: redeploys the app (all replicas restart) with a 1 s request timeout."""
    known = live_app.post("/v1/contexts", {"text": DOCS[1]}).json()["context_id"]
    live_app.redeploy("serve.request_timeout_s=1", "serve.max_context_tokens=20000")
    assert live_app.get(f"/v1/contexts/{known}").status_code == 200  # from serve.cache_dir
    assert live_app.get("/healthz").json()["cache"]["disk_hits"] >= 1
    warm = live_app.post("/v1/answers", {"context_id": known, "questions": QUESTIONS})
    assert warm.status_code == 200 and warm.json()["answers"] == reference[DOCS[1]]

    long_doc = {"text": "a long document, slow to encode. " * 500}  # 16500 tokens: seconds to encode
    slow = live_app.post("/v1/contexts", long_doc)
    assert slow.status_code == 504 and "serve.request_timeout_s=1" in slow.text
    assert live_app.get("/healthz").status_code == 200
    deadline = time.monotonic() + 90  # the encoding goes on and is cached: a retry soon succeeds
    while (retry := live_app.post("/v1/contexts", long_doc)).status_code == 504 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert retry.status_code == 200 and retry.json()["cached"] is True
