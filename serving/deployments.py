"""The deployments behind the HTTP ingress: autoscaled encoders, multiplexed answerers, one shared adapter store.

Each model replica holds one engine. Encoding and answering swap module attributes during functional calls, so a
replica runs one request's model work at a time in a worker thread (``SerialRunner``; the event loop keeps serving
health checks). Parallelism comes from replicas.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable

import ray
import torch
from ray import serve
from ray.serve.handle import DeploymentHandle

from perk_ray.config import PerkConfig
from perk_ray.engine import Memory
from serving.cache import AdapterDir, ByteLRU
from serving.schemas import AdapterInfo, CacheStats
from serving.settings import engine_device, load_engine

# Scheduling reservation of a model replica: half a CPU lets 2 encoders and 1 answerer share a 2-core machine
# (each replica's torch runs one thread). Override per deployment with a Serve config file (ray_actor_options).
MODEL_REPLICA_CPUS = 0.5
# Encoders react within seconds to a queue (an encoding takes seconds) and give replicas back after a minute.
AUTOSCALING_DELAYS = {"upscale_delay_s": 2.0, "downscale_delay_s": 60.0, "look_back_period_s": 10.0}


class ContextNotFound(LookupError):
    """The context id is not in the adapter store (never encoded, deleted or evicted)."""


def _replica_id() -> str:
    return serve.get_replica_context().replica_id.unique_id


@dataclass
class Encoded:
    memory: Memory
    replica: str


@dataclass
class Answered:
    answers: list[str]
    answer_ms: float
    replica: str


class SerialRunner:
    """Runs blocking calls one at a time in a worker thread.

    A cancelled caller (client gone, request timeout) cannot stop its thread, so the lock is released when the
    thread finishes, not when the caller gives up: the next call never overlaps a running one.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self._lock.acquire()
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        work.add_done_callback(lambda _: self._lock.release())
        return await asyncio.shield(work)


class _ModelReplica:
    """One engine per replica; its model work runs serially in a thread."""

    def __init__(self, cfg: PerkConfig):
        self.engine = load_engine(cfg, engine_device(ray.get_gpu_ids(), torch.cuda.is_available()))
        self.replica = _replica_id()
        self._run = SerialRunner()


@serve.deployment(max_ongoing_requests=1, ray_actor_options={"num_cpus": MODEL_REPLICA_CPUS})
class Encoder(_ModelReplica):
    """Encodes a document into an adapter. One request per replica, so queued requests drive autoscaling."""

    async def encode(self, text: str) -> Encoded:
        return Encoded(await self._run(self._encode, text), self.replica)

    def _encode(self, text: str) -> Memory:
        """Encode, then hand the memory over on the CPU: the ingress and the store have no GPU."""
        return self.engine.encode(text).to("cpu")


@serve.deployment(max_ongoing_requests=4, ray_actor_options={"num_cpus": MODEL_REPLICA_CPUS})
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

    async def answer(self, questions: list[str], memory: Memory | None = None) -> Answered:
        """Answer from ``memory``, or from the adapter of the request's multiplexed model id (the context id)."""
        start = time.perf_counter()
        if memory is None:
            memory = await self._adapter(serve.get_multiplexed_model_id())
        answers = await self._run(self.engine.answer, memory, questions)
        return Answered(answers, round((time.perf_counter() - start) * 1000, 1), self.replica)


@serve.deployment(num_replicas=1, max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
class AdapterStore:
    """The adapter cache shared by all replicas.

    Adapters live in the Ray object store, owned by this replica; it keeps an LRU index of their references bounded
    by ``serve.cache_bytes``. Readers get a reference and fetch the tensors from the object store. With
    ``serve.cache_dir`` every adapter is also written as a safetensors file, so a restart reuses it.
    All methods run on the replica's event loop, so the index needs no lock.
    """

    def __init__(self, cfg: PerkConfig):
        self._lru: ByteLRU[tuple[AdapterInfo, ray.ObjectRef]] = ByteLRU(cfg.serve.cache_bytes)
        self._dir = AdapterDir(cfg.serve.cache_dir) if cfg.serve.cache_dir else None
        self._counts = {"hits": 0, "disk_hits": 0, "misses": 0, "evictions": 0}

    async def put(self, info: AdapterInfo, memory: Memory) -> None:
        if self._dir is not None:
            await asyncio.to_thread(self._dir.write, info, memory)
        self._keep(info, ray.put(memory))

    async def info(self, context_id: str) -> AdapterInfo | None:
        entry = await self._entry(context_id)
        return None if entry is None else entry[0]

    async def get(self, context_id: str) -> list[ray.ObjectRef] | None:
        """The adapter's object reference, in a list (so that Serve passes the reference, not the value)."""
        entry = await self._entry(context_id)
        return None if entry is None else [entry[1]]

    async def delete(self, context_id: str) -> bool:
        in_memory = self._lru.pop(context_id) is not None
        on_disk = self._dir is not None and self._dir.delete(context_id)
        return in_memory or on_disk

    async def stats(self) -> CacheStats:
        return CacheStats(entries=len(self._lru), bytes=self._lru.nbytes, capacity_bytes=self._lru.capacity,
                          directory=None if self._dir is None else str(self._dir.root), **self._counts)

    def _keep(self, info: AdapterInfo, ref: ray.ObjectRef) -> tuple[AdapterInfo, ray.ObjectRef]:
        evicted = self._lru.put(info.context_id, (info, ref), info.nbytes)
        self._counts["evictions"] += len(evicted)
        return info, ref

    async def _entry(self, context_id: str) -> tuple[AdapterInfo, ray.ObjectRef] | None:
        entry = self._lru.get(context_id)
        if entry is not None:
            self._counts["hits"] += 1
            return entry
        found = None if self._dir is None else await asyncio.to_thread(self._dir.read, context_id)
        if found is None:
            self._counts["misses"] += 1
            return None
        self._counts["disk_hits"] += 1
        return self._keep(found[0], ray.put(found[1]))
