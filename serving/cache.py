"""The adapter cache: content-addressed keys, a byte-bounded LRU and an optional safetensors directory.

A context id (returned to clients) hashes the encoder, the tenant and the text. The cache holds adapters under a
storage key that hashes the tenant and the context id, so a tenant presenting another tenant's id finds nothing,
and no file name ever comes from what a client sent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Generic, TypeVar

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from perk_ray.engine import Memory
from serving.schemas import AdapterInfo, is_context_id

V = TypeVar("V")
STORAGE_KEY = re.compile(r"[0-9a-f]{64}")


def context_key(engine_digest: str, tenant: str, text: str) -> str:
    """The context id: a hash of what encoding depends on (checkpoint, encoding config), the tenant and the text."""
    return hashlib.sha256(f"{engine_digest}\0{tenant}\0{text}".encode()).hexdigest()[:32]


def storage_key(tenant: str, context_id: str) -> str:
    """Where the cache keeps a tenant's context: never the same for two tenants."""
    if not is_context_id(context_id):
        raise ValueError("not a context id")
    return hashlib.sha256(f"{tenant}\0{context_id}".encode()).hexdigest()


def adapter_info(context_id: str, memory: Memory) -> AdapterInfo:
    return AdapterInfo(context_id=context_id, tokens=memory.num_tokens, chunks=memory.num_chunks,
                       nbytes=memory.nbytes, encode_ms=round(memory.encode_seconds * 1000, 1), created=int(time.time()))


class ByteLRU(Generic[V]):
    """Least-recently-used map bounded by the sum of its values' sizes in bytes."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.nbytes = 0
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items

    def values(self) -> Iterator[V]:
        """The values, least recently used first (without refreshing them)."""
        return (value for value, _ in self._items.values())

    def get(self, key: str) -> V | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key][0]

    def put(self, key: str, value: V, nbytes: int) -> list[str]:
        """Insert (or refresh) ``key``; returns the evicted keys. A value larger than the capacity is not kept."""
        self.pop(key)
        if nbytes > self.capacity:
            return []
        self._items[key] = (value, nbytes)
        self.nbytes += nbytes
        evicted = []
        while self.nbytes > self.capacity:
            old, (_, size) = self._items.popitem(last=False)
            self.nbytes -= size
            evicted.append(old)
        return evicted

    def pop(self, key: str) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.nbytes -= item[1]
        return item[0]


class AdapterDir:
    """Encoded adapters as ``<storage key>.safetensors`` files (tenant and info in the metadata), written atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if not STORAGE_KEY.fullmatch(key):
            raise ValueError("not a storage key")
        return self.root / f"{key}.safetensors"

    def writable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)

    def write(self, key: str, tenant: str, info: AdapterInfo, memory: Memory) -> None:
        tensors = {n: t.detach().cpu().contiguous() for n, t in memory.params.items()}
        meta = {"tenant": tenant, "info": info.model_dump_json(), "inner_losses": json.dumps(memory.inner_losses)}
        path = self.path(key)
        tmp = self.root / f".{key}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            save_file(tensors, str(tmp), metadata=meta)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def read(self, key: str) -> tuple[str, AdapterInfo, Memory] | None:
        """The tenant, info and memory stored under ``key``, or None."""
        path = self.path(key)
        if not path.exists():
            return None
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
            params = {name: f.get_tensor(name) for name in f.keys()}
        info = AdapterInfo.model_validate_json(meta["info"])
        memory = Memory(params, info.chunks, info.tokens, json.loads(meta["inner_losses"]), info.encode_ms / 1000)
        return meta["tenant"], info, memory

    def infos(self, tenant: str) -> list[AdapterInfo]:
        """The infos of a tenant's adapters, from the files' headers."""
        found = []
        for path in self.root.glob("*.safetensors"):
            try:
                with safe_open(str(path), framework="pt") as f:
                    meta = f.metadata()
                if meta["tenant"] == tenant:
                    found.append(AdapterInfo.model_validate_json(meta["info"]))
            except (OSError, ValueError, KeyError, SafetensorError):  # deleted meanwhile, or not one of ours
                continue
        return found

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False
