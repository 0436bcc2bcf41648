"""The deployments behind the HTTP ingress: autoscaled encoders, multiplexed answerers, one shared adapter store.

Each model replica holds one engine. Encoding and answering swap module attributes during functional calls, so a
replica runs one request's model work at a time in a worker thread (``SerialRunner``; the event loop keeps serving
health checks). Parallelism comes from replicas. A replica whose model call runs past ``serve.replica_stall_s``, or
a store whose directory is no longer writable, fails Serve's health check and is replaced.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
import torch
from ray import serve
from ray.serve.handle import DeploymentHandle

from perk_ray.config import PerkConfig
from perk_ray.engine import Memory
from perk_ray.prompts import question_prompt
from serving.cache import AdapterDir, ByteLRU
from serving.schemas import AdapterInfo, CacheStats
from serving.settings import engine_device, load_engine

# Scheduling reservation of a model replica: half a CPU lets 2 encoders and 1 answerer share a 2-core machine
# (each replica's torch runs one thread). Override per deployment with a Serve config file (ray_actor_options).
MODEL_REPLICA_CPUS = 0.5
# Encoders react within seconds to a queue (an encoding takes seconds) and give replicas back after a minute.
AUTOSCALING_DELAYS = {"upscale_delay_s": 2.0, "downscale_delay_s": 60.0, "look_back_period_s": 10.0}
# A dead replica is noticed by its failed health check: every 2 s instead of Serve's 10 s (the checks are cheap).
HEALTH_CHECKS = {"health_check_period_s": 2.0, "health_check_timeout_s": 30.0}


class ContextNotFound(LookupError):
    """The context id is not in the adapter store (never encoded, deleted or evicted)."""


def _replica_id() -> str:
    return serve.get_replica_context().replica_id.unique_id


@dataclass
class Entry:
    """A cached adapter: its tenant, info and tensors (a reference into the object store)."""

    tenant: str
    info: AdapterInfo
    ref: ray.ObjectRef


@dataclass
class Encoded:
    memory: Memory
    replica: str


@dataclass
class Answered:
    answers: list[str]
    answer_ms: float
    replica: str
    prompt_tokens: list[int]
    completion_tokens: list[int]  # tokens of each returned answer


class SerialRunner:
    """Runs blocking calls one at a time in a worker thread.

    A cancelled caller (client gone, request timeout) cannot stop its thread, so the lock is released when the
    thread finishes, not when the caller gives up: the next call never overlaps a running one.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._since: float | None = None

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self._lock.acquire()
        self._since = time.monotonic()
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        work.add_done_callback(self._done)
        return await asyncio.shield(work)

    def busy_seconds(self) -> float:
        """How long the running call has run (0 when idle)."""
        return 0.0 if self._since is None else time.monotonic() - self._since

    def _done(self, _: asyncio.Future) -> None:
        self._since = None
        self._lock.release()


class _ModelReplica:
    """One engine per replica; its model work runs serially in a thread."""

    def __init__(self, cfg: PerkConfig):
        self.engine = load_engine(cfg, engine_device(ray.get_gpu_ids(), torch.cuda.is_available()))
        self.replica = _replica_id()
        self._run = SerialRunner()
        self._stall_s = cfg.serve.replica_stall_s

    def check_health(self) -> None:
        if (busy := self._run.busy_seconds()) > self._stall_s:
            raise RuntimeError(f"one model call has run for {busy:.0f}s, over serve.replica_stall_s={self._stall_s:g}")


@serve.deployment(max_ongoing_requests=1, ray_actor_options={"num_cpus": MODEL_REPLICA_CPUS}, **HEALTH_CHECKS)
class Encoder(_ModelReplica):
    """Encodes a document into an adapter. One request per replica, so queued requests drive autoscaling."""

    async def encode(self, text: str) -> Encoded:
        return Encoded(await self._run(self._encode, text), self.replica)

    def _encode(self, text: str) -> Memory:
        """Encode, then hand the memory over on the CPU: the ingress and the store have no GPU."""
        return self.engine.encode(text).to("cpu")


@serve.deployment(max_ongoing_requests=4, ray_actor_options={"num_cpus": MODEL_REPLICA_CPUS}, **HEALTH_CHECKS)
class Answerer(_ModelReplica):
    """Answers a request's questions in one generate call, with adapters multiplexed by context id."""

    def __init__(self, cfg: PerkConfig, store: DeploymentHandle):
        super().__init__(cfg)
        self._store = store

        async def load_adapter(context_id: str) -> Memory:
            ref = await self._store.get.remote(context_id)
            if ref is None:
                raise ContextNotFound(f"context {context_id} is not in the adapter store")
            return await ref[0]

        self._adapter = serve.multiplexed(max_num_models_per_replica=cfg.serve.max_adapters_per_replica)(load_adapter)

    async def answer(self, questions: list[str], memory: Memory | None = None,
                     max_new_tokens: int | None = None) -> Answered:
        """Answer from ``memory``, or from the adapter of the request's multiplexed model id (its storage key)."""
        start = time.perf_counter()
        if memory is None:
            memory = await self._adapter(serve.get_multiplexed_model_id())
        answers, prompt_tokens, completion_tokens = await self._run(self._answer, memory, questions, max_new_tokens)
        return Answered(answers, round((time.perf_counter() - start) * 1000, 1), self.replica, prompt_tokens,
                        completion_tokens)

    def _answer(self, memory: Memory, questions: list[str],
                max_new_tokens: int | None) -> tuple[list[str], list[int], list[int]]:
        answers = self.engine.answer(memory, questions, max_new_tokens)
        tokenizer = self.engine.base.tokenizer
        prompts = [question_prompt(memory.num_chunks, q) for q in questions]
        count = [len(ids) for ids in tokenizer(prompts + answers, add_special_tokens=False)["input_ids"]]
        return answers, count[: len(questions)], count[len(questions):]


@serve.deployment(num_replicas=1, max_ongoing_requests=256, ray_actor_options={"num_cpus": 0}, **HEALTH_CHECKS)
class AdapterStore:
    """The adapter cache shared by all replicas, keyed by storage key (see serving.cache).

    Adapters live in the Ray object store, owned by this replica; it keeps an LRU index of their references bounded
    by ``serve.cache_bytes``. Readers get a reference and fetch the tensors from the object store. With
    ``serve.cache_dir`` every adapter is also written as a safetensors file, so a restart reuses it.
    All methods run on the replica's event loop, so the index needs no lock.
    """

    def __init__(self, cfg: PerkConfig):
        self._lru: ByteLRU[Entry] = ByteLRU(cfg.serve.cache_bytes)
        self._dir = AdapterDir(cfg.serve.cache_dir) if cfg.serve.cache_dir else None
        self._counts = {"hits": 0, "disk_hits": 0, "misses": 0, "evictions": 0}

    def check_health(self) -> None:
        if self._dir is not None and not self._dir.writable():
            raise RuntimeError(f"serve.cache_dir {self._dir.root} is not a writable directory")

    async def put(self, key: str, tenant: str, info: AdapterInfo, memory: Memory) -> None:
        if self._dir is not None:
            await asyncio.to_thread(self._dir.write, key, tenant, info, memory)
        self._keep(key, Entry(tenant, info, ray.put(memory)))

    async def info(self, key: str) -> AdapterInfo | None:
        entry = await self._entry(key)
        return None if entry is None else entry.info

    async def get(self, key: str) -> list[ray.ObjectRef] | None:
        """The adapter's object reference, in a list (so that Serve passes the reference, not the value)."""
        entry = await self._entry(key)
        return None if entry is None else [entry.ref]

    async def infos(self, tenant: str) -> list[AdapterInfo]:
        """A tenant's adapters, in memory or on disk, oldest first."""
        found = {e.info.context_id: e.info for e in self._lru.values() if e.tenant == tenant}
        if self._dir is not None:
            for info in await asyncio.to_thread(self._dir.infos, tenant):
                found.setdefault(info.context_id, info)
        return sorted(found.values(), key=lambda info: (info.created, info.context_id))

    async def delete(self, key: str) -> bool:
        in_memory = self._lru.pop(key) is not None
        on_disk = self._dir is not None and self._dir.delete(key)
        return in_memory or on_disk

    async def stats(self) -> CacheStats:
        return CacheStats(entries=len(self._lru), bytes=self._lru.nbytes, capacity_bytes=self._lru.capacity,
                          directory=None if self._dir is None else str(self._dir.root), **self._counts)

    def _keep(self, key: str, entry: Entry) -> Entry:
        evicted = self._lru.put(key, entry, entry.info.nbytes)
        self._counts["evictions"] += len(evicted)
        return entry

    async def _entry(self, key: str) -> Entry | None:
        entry = self._lru.get(key)
        if entry is not None:
            self._counts["hits"] += 1
            return entry
        found = None if self._dir is None else await asyncio.to_thread(self._dir.read, key)
        if found is None:
            self._counts["misses"] += 1
            return None
        self._counts["disk_hits"] += 1
        tenant, info, memory = found
        return self._keep(key, Entry(tenant, info, ray.put(memory)))
