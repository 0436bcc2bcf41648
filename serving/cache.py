"""The adapter cache: content-addressed keys, a byte-bounded LRU and an optional safetensors directory."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

from safetensors import safe_open
from safetensors.torch import load_file, save_file

from perk_ray.engine import Memory
from serving.schemas import AdapterInfo

V = TypeVar("V")


def context_key(engine_digest: str, text: str) -> str:
    """The context id: a hash of what encoding depends on (checkpoint, encoding config) and the text."""
    return hashlib.sha256(f"{engine_digest}\0{text}".encode()).hexdigest()[:32]


def adapter_info(context_id: str, memory: Memory) -> AdapterInfo:
    return AdapterInfo(context_id=context_id, tokens=memory.num_tokens, chunks=memory.num_chunks,
                       nbytes=memory.nbytes, encode_ms=round(memory.encode_seconds * 1000, 1))


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
    """Encoded adapters as ``<context_id>.safetensors`` files (info in the metadata), written atomically."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / f"{key}.safetensors"

    def write(self, info: AdapterInfo, memory: Memory) -> None:
        tensors = {n: t.detach().cpu().contiguous() for n, t in memory.params.items()}
        meta = {"info": info.model_dump_json(), "inner_losses": json.dumps(memory.inner_losses)}
        tmp = self.root / f".{info.context_id}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            save_file(tensors, str(tmp), metadata=meta)
            os.replace(tmp, self.path(info.context_id))
        finally:
            tmp.unlink(missing_ok=True)

    def read(self, key: str) -> tuple[AdapterInfo, Memory] | None:
        path = self.path(key)
        if not path.exists():
            return None
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        info = AdapterInfo.model_validate_json(meta["info"])
        memory = Memory(load_file(str(path)), info.chunks, info.tokens, json.loads(meta["inner_losses"]),
                        info.encode_ms / 1000)
        return info, memory

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
            return True
        except FileNotFoundError:
            return False
