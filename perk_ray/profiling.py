"""Measured peak memory of a block of work: CUDA allocator peaks on GPU, sampled resident memory on CPU."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
import time
from dataclasses import dataclass

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if ctypes.util.find_library("c") else None


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


def release_freed_memory() -> None:
    """Return freed heap pages to the OS (glibc malloc_trim), so the next RSS baseline is honest."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


@dataclass
class PeakMemory:
    """``with PeakMemory(device) as mem: ...`` then ``mem.peak_bytes``: the peak above the level at entry.

    On CPU a thread samples the process's resident set every ``interval_s``; tensors above glibc's mmap threshold
    (128 KiB) are returned to the OS when freed, so the peak tracks live tensor memory closely.
    """

    device: torch.device | str = "cpu"
    interval_s: float = 0.0005
    peak_bytes: int = 0

    def __enter__(self) -> PeakMemory:
        self._cuda = torch.device(self.device).type == "cuda"
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        release_freed_memory()
        self._start = _rss_bytes()
        self._max = self._start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, _rss_bytes())
            time.sleep(self.interval_s)

    def __exit__(self, *exc) -> None:
        if self._cuda:
            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated() - self._start
            return
        self._max = max(self._max, _rss_bytes())
        self._stop.set()
        self._thread.join()
        self.peak_bytes = self._max - self._start

    @property
    def peak_mib(self) -> float:
        return self.peak_bytes / 2**20
