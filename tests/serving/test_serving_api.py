"""The app with API keys (serve.run, tiny preset): bad input of every class, tenants kept apart, the openai client."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import ray
import requests
import torch
from ray import serve
from safetensors.torch import save_file

from perk_ray.config import PerkConfig, load_config
from perk_ray.engine import PerkEngine
from serving.app import build_app

DOC = "The vault code is 4812. The courier is Ilse. " * 6
QUESTION = "What is the vault code?"
KEYS = {"acme": "sk-acme-0123456789", "beta": "sk-beta-9876543210"}
LIMITS = ["serve.max_body_bytes=20000", "serve.max_text_bytes=4000", "serve.max_question_bytes=400",
          "serve.max_question_tokens=40", "serve.max_new_tokens=8", "serve.max_questions=4",
          "serve.max_context_tokens=2000"]


@dataclass
class KeyedApp:
    url: str
    cfg: PerkConfig
    outside: Path  # an adapter file outside the cache directory

    def call(self, method: str, path: str, tenant: str | None = "acme", **kwargs) -> requests.Response:
        headers = {} if tenant is None else {"Authorization": f"Bearer {KEYS[tenant]}"}
        return requests.request(method, self.url + path, headers={**headers, **kwargs.pop("headers", {})},
                                timeout=120, **kwargs)

    def stats(self) -> dict:
        return requests.get(self.url + "/healthz", timeout=60).json()["cache"]


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[KeyedApp]:
    """One encoder, one answerer, two tenants, a cache directory; on a free port of 127.0.0.1."""
    root = tmp_path_factory.mktemp("keyed")
    (root / "keys").write_text("".join(f"{tenant}:{key}\n" for tenant, key in KEYS.items()))
    cfg = load_config("tiny", ["inner.lr=0.01", "serve.encoder_min_replicas=1", "serve.encoder_max_replicas=1",
                               f"serve.cache_dir={root / 'cache'}", f"serve.api_keys_file={root / 'keys'}", *LIMITS])
    ray.init(num_cpus=2, include_dashboard=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app(cfg), name="keyed", route_prefix="/")
    yield KeyedApp(f"http://127.0.0.1:{port}", cfg, root / "outside.safetensors")
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def engine(app: KeyedApp) -> PerkEngine:
    torch.set_num_threads(1)
    return PerkEngine.from_config(app.cfg)


@pytest.fixture(scope="module")
def acme_context(app: KeyedApp) -> str:
    created = app.call("POST", "/v1/contexts", json={"text": DOC})
    assert created.status_code == 200, created.text
    return created.json()["context_id"]


ROUTES = [("GET", "/v1/models"), ("POST", "/v1/contexts"), ("POST", "/v1/answers"), ("POST", "/v1/chat/completions"),
          ("GET", "/v1/contexts/" + "0" * 32), ("DELETE", "/v1/contexts/" + "0" * 32), ("GET", "/docs"),
          ("GET", "/openapi.json")]


def test_every_route_but_healthz_needs_a_key(app: KeyedApp):
    assert app.call("GET", "/healthz", tenant=None).status_code == 200
    for method, path in ROUTES:
        for headers in ({}, {"Authorization": "Bearer sk-wrong"}, {"Authorization": KEYS["acme"]}):
            response = app.call(method, path, tenant=None, headers=headers, json={"text": DOC})
            assert response.status_code == 401, (method, path, response.text)


def test_tenants_cannot_see_answer_or_delete_each_others_contexts(app: KeyedApp, acme_context: str):
    beta = app.call("POST", "/v1/contexts", tenant="beta", json={"text": DOC})
    assert beta.status_code == 200 and beta.json()["context_id"] != acme_context
    assert beta.json()["cached"] is False  # the same text encoded again for beta: nothing shared
    path = f"/v1/contexts/{acme_context}"
    assert app.call("GET", path, tenant="beta").status_code == 404
    assert app.call("POST", "/v1/answers", tenant="beta",
                    json={"context_id": acme_context, "questions": [QUESTION]}).status_code == 404
    chat = app.call("POST", "/v1/chat/completions", tenant="beta",
                    json={"model": acme_context, "messages": [{"role": "user", "content": QUESTION}]})
    assert chat.status_code == 404
    assert app.call("DELETE", path, tenant="beta").status_code == 404
    assert app.call("GET", path).status_code == 200  # still acme's
    models = {t: [m["id"] for m in app.call("GET", "/v1/models", tenant=t).json()["data"]] for t in KEYS}
    assert acme_context in models["acme"] and acme_context not in models["beta"]
    assert beta.json()["context_id"] in models["beta"] and beta.json()["context_id"] not in models["acme"]
    files = [p.name for p in Path(app.cfg.serve.cache_dir).iterdir()]
    assert files and all(re.fullmatch(r"[0-9a-f]{64}\.safetensors", name) for name in files)  # hashes only


def _bad_requests(app: KeyedApp, context_id: str) -> list[tuple[str, str, dict, int, str]]:
    """(method, path, requests kwargs, status, text in the response) for each class of bad input."""
    outside = str(app.outside.with_suffix(""))
    nested = "[" * 5000 + "]" * 5000
    return [
        ("POST", "/v1/answers", {"json": {"context_id": "../outside", "questions": ["q?"]}}, 422, "context_id"),
        ("POST", "/v1/answers", {"json": {"context_id": f"../../{context_id}", "questions": ["q?"]}}, 422,
         "context_id"),
        ("POST", "/v1/answers", {"json": {"context_id": outside, "questions": ["q?"]}}, 422, "context_id"),
        ("GET", "/v1/contexts/..%2Foutside", {}, 404, "Not Found"),  # no route takes a slash in an id
        ("GET", "/v1/contexts/" + "..." + context_id[3:], {}, 422, "context_id"),
        ("DELETE", "/v1/contexts/" + context_id.upper(), {}, 422, "context_id"),
        ("POST", "/v1/chat/completions", {"json": {"model": outside, "messages": [{"role": "user", "content": "q"}]}},
         404, "unknown model"),
        ("POST", "/v1/contexts", {"json": {"text": "x" * 30000}}, 413, "serve.max_body_bytes=20000"),
        ("POST", "/v1/contexts", {"json": {"text": "y" * 4001}}, 413, "serve.max_text_bytes=4000"),
        ("POST", "/v1/contexts", {"json": {"text": "\u00e9" * 2001}}, 413, "serve.max_text_bytes=4000"),
        ("POST", "/v1/answers", {"json": {"context_id": context_id, "questions": ["q" * 401]}}, 413,
         "serve.max_question_bytes=400"),
        ("POST", "/v1/answers", {"json": {"context_id": context_id, "questions": ["q" * 41]}}, 413,
         "serve.max_question_tokens=40"),
        ("POST", "/v1/chat/completions", {"json": {"model": context_id,
                                                    "messages": [{"role": "user", "content": "q" * 41}]}}, 413,
         "serve.max_question_tokens=40"),
        ("POST", "/v1/contexts", {"json": {"text": 123}}, 422, "string"),
        ("POST", "/v1/contexts", {"json": ["a list"]}, 422, "dict"),
        ("POST", "/v1/answers", {"json": {"context_id": context_id, "questions": "not a list"}}, 422, "list"),
        ("POST", "/v1/answers", {"json": {"context_id": 5, "questions": ["q?"]}}, 422, "string"),
        ("POST", "/v1/chat/completions", {"json": {"model": context_id, "messages": "hi"}}, 422, "list"),
        ("POST", "/v1/contexts", {"data": b'{"text": "\xff\xfe\xfa"}',
                                  "headers": {"Content-Type": "application/json"}}, 400, "parsing the body"),
        ("POST", "/v1/contexts", {"data": b'{"text": "ok \\ud800"}',
                                  "headers": {"Content-Type": "application/json"}}, 422, "UTF-8"),
        ("POST", "/v1/contexts", {"data": '{"text": ' + nested + "}",
                                  "headers": {"Content-Type": "application/json"}}, 400, "parsing the body"),
        ("POST", "/v1/answers", {"data": '{"questions": ' + nested + "}",
                                 "headers": {"Content-Type": "application/json"}}, 400, "parsing the body"),
    ]


def test_bad_input_of_every_class_is_refused_touching_no_file(app: KeyedApp, acme_context: str, engine):
    cache = Path(app.cfg.serve.cache_dir)
    save_file({"x": torch.zeros(2)}, str(app.outside))  # a safetensors file an id like "../outside" used to open
    before = (app.stats(), sorted(p.name for p in cache.iterdir()))
    for method, path, kwargs, status, text in _bad_requests(app, acme_context):
        response = app.call(method, path, **kwargs)
        assert (response.status_code, text in response.text) == (status, True), (method, path, response.text[:300])
    assert (app.stats(), sorted(p.name for p in cache.iterdir())) == before  # no look-up, no file touched

    answer = app.call("POST", "/v1/answers", json={"context_id": acme_context, "questions": [QUESTION]})
    assert answer.status_code == 200
    assert answer.json()["answers"] == engine.answer(engine.encode(DOC), [QUESTION])


def test_the_openai_client_works_unchanged(app: KeyedApp, acme_context: str, engine):
    client = openai.OpenAI(base_url=app.url + "/v1", api_key=KEYS["acme"], max_retries=0, timeout=120)
    assert acme_context in [model.id for model in client.models.list()]
    memory = engine.encode(DOC)
    for max_tokens, limit in ((3, 3), (10_000, app.cfg.serve.max_new_tokens)):  # honoured, then capped
        chat = client.chat.completions.create(model=acme_context, max_tokens=max_tokens, temperature=0,
                                              messages=[{"role": "system", "content": "Answer briefly."},
                                                        {"role": "user", "content": QUESTION}])
        choice = chat.choices[0]
        assert choice.message.content == engine.answer(memory, [QUESTION], limit)[0]
        assert chat.model == acme_context and choice.message.role == "assistant"
        assert 0 < chat.usage.prompt_tokens and chat.usage.completion_tokens <= limit
        assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens
        assert choice.finish_reason == ("length" if chat.usage.completion_tokens == limit else "stop")
    with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-4o'"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    stranger = openai.OpenAI(base_url=app.url + "/v1", api_key="sk-nobody", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        stranger.models.list()
