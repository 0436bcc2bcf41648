"""Without a Ray cluster: the cache pieces, serial model calls, the serving configuration, load-test helpers."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
import torch
from fastapi import HTTPException
from ray.exceptions import ActorDiedError

from perk_ray.checkpoint import save_meta_checkpoint
from perk_ray.chunking import context_token_ids
from perk_ray.config import load_config
from perk_ray.engine import Memory, PerkEngine
from perk_ray.errors import ConfigError
from serving import ingress
from serving.app import build_app
from serving.cache import AdapterDir, ByteLRU, adapter_info, context_key, storage_key
from serving.deployments import AdapterStore, Encoder, SerialRunner
from serving.ingress import PerkAPI
from serving.loadtest import Client, make_document, parse_args, percentile
from serving.settings import engine_config, engine_digest, load_engine, load_serving_config, serving_note


def test_lru_is_bounded_by_bytes_and_evicts_least_recently_used():
    lru: ByteLRU[str] = ByteLRU(capacity=10)
    assert lru.put("a", "A", 4) == [] and lru.put("b", "B", 4) == []
    assert lru.get("a") == "A"  # a is now the most recent
    assert lru.put("c", "C", 4) == ["b"]
    assert "a" in lru and "c" in lru and lru.nbytes == 8
    assert lru.put("huge", "H", 11) == [] and "huge" not in lru  # larger than the whole cache: not kept
    assert lru.pop("a") == "A" and lru.nbytes == 4 and len(lru) == 1


def test_adapter_dir_round_trip_is_atomic_and_keyed_by_hash(tmp_path):
    memory = Memory({"x.lora_A.default.weight": torch.randn(2, 3)}, num_chunks=2, num_tokens=100,
                    inner_losses=[1.5, 1.2], encode_seconds=0.25)
    info = adapter_info("0" * 32, memory)
    key = storage_key("acme", info.context_id)
    store = AdapterDir(tmp_path)
    store.write(key, "acme", info, memory)
    assert [p.name for p in tmp_path.iterdir()] == [f"{key}.safetensors"]  # no temporary file left
    tenant, read_info, read = store.read(key)
    assert tenant == "acme" and read_info == info and read.num_tokens == 100 and read.inner_losses == [1.5, 1.2]
    assert torch.equal(read.params["x.lora_A.default.weight"], memory.params["x.lora_A.default.weight"])
    assert store.infos("acme") == [info] and store.infos("other") == []
    assert store.read(storage_key("other", info.context_id)) is None  # another tenant, the same id: nothing
    for bad in ("../x", "/etc/passwd", info.context_id, key.upper()):
        with pytest.raises(ValueError):
            store.path(bad)
    assert store.delete(key) and not store.delete(key)


def test_storage_keys_keep_tenants_apart_and_take_only_context_ids():
    cid = context_key("digest", "acme", "doc")
    assert storage_key("acme", cid) != storage_key("beta", cid) and len(storage_key("acme", cid)) == 64
    for bad in ("../" + cid[3:], "/" + cid[1:], cid + "\n", cid.upper(), ""):
        with pytest.raises(ValueError):
            storage_key("acme", bad)


def test_serial_runner_keeps_the_model_locked_until_a_cancelled_call_returns():
    running: list[int] = []

    def work(seconds: float) -> float:
        running.append(1)
        assert len(running) == 1, "two model calls overlap"
        time.sleep(seconds)
        running.pop()
        return seconds

    async def scenario() -> None:
        run = SerialRunner()
        first = asyncio.ensure_future(run(work, 0.3))
        await asyncio.sleep(0.05)
        first.cancel()  # the caller gives up (timeout, client gone); its thread cannot be stopped
        assert await run(work, 0.01) == 0.01  # waits for the cancelled call's thread
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(scenario())


def test_context_key_depends_on_encoding_config_tenant_and_text():
    tiny = engine_digest(load_config("tiny"))
    assert context_key(tiny, "", "doc") == context_key(tiny, "", "doc")
    assert context_key(tiny, "", "doc") != context_key(tiny, "", "doc2")
    assert context_key(tiny, "acme", "doc") != context_key(tiny, "beta", "doc")
    assert engine_digest(load_config("tiny", ["inner.steps=2"])) != tiny
    assert engine_digest(load_config("tiny", ["serve.max_questions=2", "serve.cache_dir=/tmp/x"])) == tiny


def test_checkpoint_serving_uses_its_config_and_contents_in_the_key(tmp_path):
    trained = PerkEngine.from_config(load_config("tiny", ["inner.steps=2", "inner.truncation=1"]))
    save_meta_checkpoint(tmp_path / "a", trained.base, trained.meta, trained.cfg)
    with torch.no_grad():
        next(iter(trained.meta.log_inner_lrs.values())).add_(0.5)
    save_meta_checkpoint(tmp_path / "b", trained.base, trained.meta, trained.cfg)
    cfg_a, cfg_b = (load_serving_config({"PERK_CHECKPOINT": str(tmp_path / n)}) for n in "ab")
    assert engine_config(cfg_a).inner.steps == 2 and engine_config(cfg_a).serve == cfg_a.serve
    assert len({engine_digest(cfg_a), engine_digest(cfg_b), engine_digest(load_config("tiny"))}) == 3
    engine = load_engine(cfg_a)
    tokens = sum(map(len, context_token_ids(engine.base.tokenizer, "some text")))
    assert engine.cfg.inner.steps == 2 and engine.encode("some text").num_tokens == tokens


def test_serving_config_from_environment(tmp_path):
    cfg = load_serving_config({"PERK_OVERRIDES": "serve.max_questions=3 serve.encoder_max_replicas=4"})
    assert cfg.preset == "tiny" and cfg.serve.max_questions == 3 and cfg.serve.encoder_max_replicas == 4
    assert "tiny" in serving_note(cfg)
    with_ckpt = load_serving_config({"PERK_CHECKPOINT": str(tmp_path)})
    assert with_ckpt.serve.checkpoint == str(tmp_path) and serving_note(with_ckpt) is None
    with pytest.raises(ConfigError, match="serve.max_questions"):
        load_serving_config({"PERK_OVERRIDES": "serve.max_questions=0"})


def test_build_app_rejects_inconsistent_scaling():
    with pytest.raises(ConfigError, match="encoder_min_replicas"):
        build_app(load_config("tiny", ["serve.encoder_min_replicas=3", "serve.encoder_max_replicas=2"]))


def test_loadtest_helpers():
    assert make_document("a", 200) == make_document("a", 200) != make_document("b", 200)
    assert len(make_document("a", 200)) >= 200
    assert percentile([float(i) for i in range(1, 101)], 50) == 50 and percentile([3.0], 99) == 3
    assert percentile([float(i) for i in range(1, 101)], 99) == 99
    with pytest.raises(SystemExit):
        parse_args(["--url", "http://example.com:8000"])
    assert parse_args(["--api-key", "sk-1"]).api_key == "sk-1"
    assert Client("127.0.0.1", 1, 1.0, "sk-1").headers["Authorization"] == "Bearer sk-1"


def test_a_call_whose_replica_died_is_retried_then_answers_503(monkeypatch):
    monkeypatch.setattr(ingress, "RETRY_DELAYS_S", (0.0, 0.0))
    call = PerkAPI.func_or_class._call
    outcomes: list[object] = [ActorDiedError(), "answer"]

    async def flaky() -> str:
        outcome = outcomes.pop(0) if outcomes else ActorDiedError()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert asyncio.run(call(None, flaky)) == "answer"  # died once: retried
    with pytest.raises(HTTPException) as err:
        asyncio.run(call(None, flaky))  # keeps dying: 503 after the retries
    assert err.value.status_code == 503 and err.value.headers == {"Retry-After": "5"}


def test_health_checks_fail_on_a_stalled_model_call_or_an_unwritable_cache_dir(tmp_path):
    async def stalled() -> None:
        run = SerialRunner()
        call = asyncio.ensure_future(run(time.sleep, 0.3))
        await asyncio.sleep(0.2)
        replica = SimpleNamespace(_run=run, _stall_s=0.1)
        with pytest.raises(RuntimeError, match="serve.replica_stall_s=0.1"):
            Encoder.func_or_class.check_health(replica)
        await call
        assert run.busy_seconds() == 0.0
        Encoder.func_or_class.check_health(replica)  # idle again: healthy

    asyncio.run(stalled())
    store = SimpleNamespace(_dir=AdapterDir(tmp_path / "cache"))
    AdapterStore.func_or_class.check_health(store)
    (tmp_path / "cache").rmdir()
    with pytest.raises(RuntimeError, match="not a writable directory"):
        AdapterStore.func_or_class.check_health(store)
