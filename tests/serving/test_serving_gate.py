"""Without a Ray cluster: API keys, the gate middleware (401, 413), validation errors and the OpenAI bodies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient

from perk_ray.errors import ConfigError
from serving.auth import ApiKeys
from serving.gate import Gate, GatePolicy, request_tenant
from serving.openai_schemas import ChatRequest
from serving.schemas import AnswerRequest
from serving.errors import validation_error

KEYS = "# tenant:key\nacme: sk-acme-1\n\nbeta:sk-beta-2\nacme:sk-acme-3\n"


@pytest.fixture
def keys(tmp_path) -> ApiKeys:
    path = tmp_path / "keys"
    path.write_text(KEYS)
    return ApiKeys.from_file(path)


def test_api_keys_map_bearer_keys_to_tenants(keys: ApiKeys):
    assert keys.tenants == {"acme", "beta"}
    assert keys.tenant("Bearer sk-acme-1") == keys.tenant("bearer sk-acme-3") == "acme"
    assert keys.tenant("Bearer sk-beta-2") == "beta"
    for bad in (None, "", "Bearer", "Bearer sk-acme", "Basic sk-acme-1", "sk-acme-1", "Bearer sk-beta-2x"):
        assert keys.tenant(bad) is None


@pytest.mark.parametrize("text,message", [
    ("acme\n", "line 1: expected tenant:key"),
    ("acme:\n", "line 1: expected tenant:key"),
    ("ok:k1\nbad tenant:secret-key\n", "line 2: tenant must match"),
    ("a:same-key\nb:same-key\n", "line 2: this key is already given to tenant 'a'"),
    ("# only a comment\n", "holds no tenant:key line"),
])
def test_bad_keys_files_are_refused_without_showing_keys(tmp_path, text, message):
    path = tmp_path / "keys"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as err:
        ApiKeys.from_file(path)
    assert "secret-key" not in str(err.value) and "same-key" not in str(err.value)
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeys.from_file(tmp_path / "missing")


def _client(policy: GatePolicy | None) -> TestClient:
    app = FastAPI()
    app.add_middleware(Gate)

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.post("/echo")
    def echo(body: dict, tenant: Annotated[str, Depends(request_tenant)]) -> dict:
        return {"tenant": tenant, "size": len(body["data"])}

    Gate.policy = policy
    return TestClient(app)


@pytest.fixture
def restore_gate() -> Iterator[None]:
    saved = Gate.policy
    yield
    Gate.policy = saved


def test_gate_lets_in_known_keys_and_healthz_only(keys: ApiKeys, restore_gate):
    client = _client(GatePolicy(keys, max_body_bytes=100))
    assert client.get("/healthz").status_code == 200
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "sk-acme-1"}):
        response = client.post("/echo", json={"data": "x"}, headers=headers)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["detail"]
    ok = client.post("/echo", json={"data": "x"}, headers={"Authorization": "Bearer sk-beta-2"})
    assert ok.status_code == 200 and ok.json() == {"tenant": "beta", "size": 1}


def test_gate_caps_the_body_declared_or_streamed(restore_gate):
    client = _client(GatePolicy(None, max_body_bytes=100))
    assert client.post("/echo", json={"data": "x" * 50}).json() == {"tenant": "", "size": 50}
    declared = client.post("/echo", json={"data": "x" * 200})
    assert declared.status_code == 413 and "serve.max_body_bytes=100" in declared.text
    chunks = (b'{"data": "' + b"x" * 60, b"x" * 60 + b'"}')  # chunked: no Content-Length to check up front
    streamed = client.post("/echo", content=iter(chunks), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and "serve.max_body_bytes=100" in streamed.text


def test_gate_refuses_requests_until_configured(restore_gate):
    assert _client(None).get("/healthz").status_code == 503


def test_chat_request_takes_the_last_user_message():
    body = {"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one"},
                                       {"role": "assistant", "content": "1"},
                                       {"role": "user", "content": [{"type": "text", "text": "two "},
                                                                    {"type": "image_url", "image_url": {"url": "x"}},
                                                                    {"type": "text", "text": "three"}]}],
            "temperature": 0.7, "max_tokens": 5}
    assert ChatRequest.model_validate(body).question() == "two three"
    system_only = {"model": "m", "messages": [{"role": "system", "content": "x"}]}
    assert ChatRequest.model_validate(system_only).question() is None
    for bad in ({"stream": True}, {"n": 2}, {"max_tokens": 0}, {"messages": []}):
        with pytest.raises(ValueError):
            ChatRequest.model_validate({**body, **bad})


def test_validation_errors_never_echo_the_input():
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.post("/answers")
    def answers(request: AnswerRequest) -> dict:
        return {}

    client = TestClient(app, raise_server_exceptions=False)
    nested = "[" * 900 + "]" * 900  # parses, then fails validation: the default error would echo all of it
    for body, where in ((b'{"text": "ok \\ud800", "questions": ["q"]}', "text"),
                        (b'{"\\ud800": 1, "text": "t", "questions": ["q"]}', "unicode"),
                        ('{"text": "t", "questions": ' + nested + "}", "questions"),
                        ('{"' + "k" * 1000 + '": 1, "text": "t", "questions": ["q"]}', "k" * 64),
                        (b'{"context_id": "../x", "questions": ["q"]}', "context_id")):
        response = client.post("/answers", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422 and where in response.text and len(response.text) < 400, response.text
