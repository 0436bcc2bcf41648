"""Check the memory planner against measurements on CPU and write ``cluster/planner_validation.md``.

Two measurements per configuration of the ``tiny`` Qwen2 model:
- the bytes autograd keeps for one kept inner step (saved-tensor hooks, exact): checks the planner's tensor counts;
- the peak resident memory of a meta-step (``PeakMemory`` around ``task_loss(...).loss.backward()``, after a
  warm-up step) above the static memory: checks the whole estimate, transients included.

Run: ``python cluster/planner_validation.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import Qwen2ForCausalLM

from perk_ray.config import PerkConfig, load_config
from perk_ray.meta import MetaParams, prepare_task, task_loss
from perk_ray.model import load_base_model, tiny_qwen2_config
from perk_ray.plan import estimate_memory, kept_step_bytes, resolve_architecture
from perk_ray.plan.memory import TRANSIENT, Transient
from perk_ray.profiling import PeakMemory

RESULTS = Path(__file__).with_name("planner_validation.md")
SENTENCE = "The code of lemon is seven. The code of apple is three. "
BASE = ["model.tiny.hidden_size=128", "model.tiny.intermediate_size=512", "inner.chunk_tokens=128",
        "inner.micro_batch_chunks=8", "inner.steps=2", "inner.truncation=1", "data.lengths=[512]"]
M_MMAP_THRESHOLD = -3


@dataclass(frozen=True)
class Case:
    name: str
    overrides: tuple[str, ...]
    calibration: bool = False  # used to fit the planner's ``Transient`` constants; the rest are held out
    vocab: int | None = None  # a saved random base with this vocabulary (logits-heavy), else the byte vocabulary


CASES = [
    Case("reference (h128, I512, L2, T=1 of K=2)", (), True),
    Case("T=0 (first-order only)", ("inner.truncation=0",), True),
    Case("rank 512, 128 tokens, T=2", ("lora.rank=512", "data.lengths=[128]", "inner.truncation=2"), True),
    Case("vocabulary 4096", (), True, vocab=4096),
    Case("vocabulary 16384, T=0, 256 tokens", ("inner.truncation=0", "data.lengths=[256]"), True, vocab=16384),
    Case("T=2 of K=2", ("inner.truncation=2",)),
    Case("T=2 of K=4, 1024 tokens, micro-batch 4", ("inner.steps=4", "inner.truncation=2", "data.lengths=[1024]",
                                                    "inner.micro_batch_chunks=4")),
    Case("T=0 of K=4, micro-batch 2, 1024 tokens", ("inner.steps=4", "inner.truncation=0", "data.lengths=[1024]",
                                                    "inner.micro_batch_chunks=2")),
    Case("chunk 64", ("inner.chunk_tokens=64",)),
    Case("hidden 256, 8 heads, intermediate 1024", ("model.tiny.hidden_size=256", "model.tiny.num_heads=8",
                                                    "model.tiny.intermediate_size=1024"), True),
    Case("4 layers", ("model.tiny.num_layers=4",)),
    Case("rank 256, 256 tokens", ("lora.rank=256", "data.lengths=[256]")),
    Case("vocabulary 8192, T=2 of K=3, 256 tokens", ("inner.steps=3", "inner.truncation=2", "data.lengths=[256]"),
         vocab=8192),
    Case("vocabulary 8192, T=0, micro-batch 2", ("inner.truncation=0", "inner.micro_batch_chunks=2"), vocab=8192),
    Case("SGD inner optimiser, no weighting model", ("inner.optimizer=sgd", "inner.weighting=none")),
    Case("bfloat16 model", ("model.dtype=bfloat16", "data.lengths=[256]")),
]


def fixed_mmap_threshold() -> None:
    """Make glibc return every freed tensor over 128 KiB to the OS at once (no dynamic threshold), so resident
    memory follows live tensors."""
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc).mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def vocab_base(vocab: int) -> Path:
    """A saved random ``tiny`` base (the BASE shape) with a larger vocabulary, loaded via ``model.pretrained_dir``."""
    path = Path(tempfile.gettempdir()) / f"perk-plan-vocab{vocab}"
    if not path.exists():
        torch.manual_seed(0)
        staging = Path(tempfile.mkdtemp(prefix=path.name, dir=path.parent))
        Qwen2ForCausalLM(tiny_qwen2_config(load_config("tiny", BASE).model, vocab)).save_pretrained(staging)
        staging.rename(path)  # atomic: a crash leaves no half-written model behind
    return path


def case_overrides(case: Case) -> list[str]:
    extra = [f"model.pretrained_dir={vocab_base(case.vocab)}"] if case.vocab else []
    return [*BASE, *case.overrides, *extra]


def case_config(case: Case) -> PerkConfig:
    return load_config("tiny", case_overrides(case))


def _setup(cfg: PerkConfig):
    base = load_base_model(cfg.model, cfg.lora)
    base.model.eval()
    meta = MetaParams.from_base(base, cfg)
    context = (SENTENCE * (max(cfg.data.lengths) // len(SENTENCE) + 1))[: max(cfg.data.lengths)]
    task = prepare_task(base.tokenizer, cfg, context, ["What is the code of apple?"], ["three"],
                        generator=torch.Generator().manual_seed(0))
    return base, meta, task


def measured_peak(cfg: PerkConfig) -> int:
    """Peak resident bytes of one meta-step above the memory held before it (a warm-up step runs first).

    Run it in a fresh process (``measure_cases``): a heap fragmented by earlier work inflates the peak.
    """
    fixed_mmap_threshold()
    torch.set_num_threads(1)
    base, meta, task = _setup(cfg)
    task_loss(base, meta, task, cfg).loss.backward()
    with PeakMemory() as mem:
        task_loss(base, meta, task, cfg).loss.backward()
    return mem.peak_bytes


def measure_cases(cases: list[Case], parallel: int = 2) -> list[int]:
    """Measured peaks of ``cases``, each in its own fresh Python process."""

    def run(case: Case) -> int:
        out = subprocess.run([sys.executable, __file__, "--measure", *case_overrides(case)], check=True,
                             capture_output=True, text=True)
        return int(out.stdout.split()[-1])

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(run, cases))


class _Box:
    __slots__ = ("tensor", "__weakref__")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


def saved_bytes(cfg: PerkConfig) -> int:
    """Bytes of the distinct tensors autograd keeps after the forward of the meta-step (parameters excluded)."""
    base, meta, task = _setup(cfg)
    params = {p.untyped_storage().data_ptr() for p in [*base.model.parameters(), *meta.parameters()]}
    boxes: weakref.WeakSet = weakref.WeakSet()

    def pack(tensor: torch.Tensor) -> _Box:
        box = _Box(tensor)
        boxes.add(box)
        return box

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda box: box.tensor):
        result = task_loss(base, meta, task, cfg)
    storages = {b.tensor.untyped_storage().data_ptr(): b.tensor.untyped_storage().nbytes() for b in list(boxes)}
    del result
    return sum(n for ptr, n in storages.items() if ptr not in params)


def kept_step_bytes_measured(cfg: PerkConfig) -> tuple[int, int]:
    """(measured, planned) bytes that one kept step adds to the graph: saved bytes at T=1 minus T=0."""
    one, zero = (cfg.model_copy(update={"inner": cfg.inner.model_copy(update={"truncation": t})}) for t in (1, 0))
    measured = saved_bytes(one) - saved_bytes(zero)
    return measured, int(sum(kept_step_bytes(cfg, resolve_architecture(cfg.model))))


def fit_transient(cases: list[Case], peaks: list[int]) -> Transient:
    """Least-squares ``Transient`` constants (relative error) on measured peaks: the estimate is linear in them."""
    rows, ones = [], []
    for case, peak in zip(cases, peaks):
        cfg = case_config(case)
        arch = resolve_architecture(cfg.model)
        base = estimate_memory(cfg, arch, Transient(0, 0, 0, 0, 0)).meta_step
        unit = [estimate_memory(cfg, arch, Transient(*np.eye(5)[i])).meta_step - base for i in range(5)]
        rows.append([u / peak for u in unit])
        ones.append(1 - base / peak)
    fit, *_ = np.linalg.lstsq(np.array(rows), np.array(ones), rcond=None)
    return Transient(*(round(float(x), 2) for x in fit))


GRAPH_CASES = [0, 3, 9, 15]  # kept-step graph checks: reference, vocabulary, wider model, bfloat16


def main() -> None:
    peaks = measure_cases(CASES)
    calibration = [(c, p) for c, p in zip(CASES, peaks) if c.calibration]
    fitted = fit_transient(*map(list, zip(*calibration)))
    print(f"fitted {fitted} (planner uses {TRANSIENT})", flush=True)
    lines = [
        "# Memory planner vs measurements (CPU)",
        "",
        "Generated by `python cluster/planner_validation.py` (`tiny` Qwen2 preset with "
        f"`{' '.join(BASE)}`, float32 unless stated; eval mode, eager attention).",
        "",
        "## Peak of one meta-step",
        "",
        "Peak resident memory above the static memory (`PeakMemory` around `task_loss(...).loss.backward()` after a",
        "warm-up step, each case in a fresh process, glibc mmap threshold fixed at 128 KiB) against",
        f"`MemoryEstimate.meta_step`. The calibration rows fitted `Transient` to {fitted}; the planner uses",
        f"{TRANSIENT}. The other rows are held out.",
        "",
        "| configuration | role | measured MiB | planned MiB | planned / measured |",
        "|---|---|---:|---:|---:|",
    ]
    held_out = []
    for case, peak in zip(CASES, peaks):
        cfg = case_config(case)
        estimate = estimate_memory(cfg, resolve_architecture(cfg.model)).meta_step
        role = "calibration" if case.calibration else "held out"
        held_out += [] if case.calibration else [estimate / peak]
        lines.append(f"| {case.name} | {role} | {peak / 2**20:.1f} | {estimate / 2**20:.1f} | {estimate / peak:.2f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Held out: planned / measured from {min(held_out):.2f} to {max(held_out):.2f} "
              "(tests/cluster/test_planner_measured.py asserts 0.75 to 1.33 on a subset). Repeated runs vary by a few",
              "MiB. On a GPU the same tensor counts apply (the bfloat16 split was measured here); the CUDA caching",
              "allocator's fragmentation is left to the planner's headroom."]
    lines += ["", "## Graph of one kept inner step", "",
              "Bytes autograd keeps for one kept step (saved-tensor hooks: T=1 minus T=0) against the planner's",
              "tensor counts (`kept_step_bytes`).", "",
              "| configuration | hooks MiB | planned MiB | planned / hooks |", "|---|---:|---:|---:|"]
    for index in GRAPH_CASES:
        measured, planned = kept_step_bytes_measured(case_config(CASES[index]))
        lines.append(f"| {CASES[index].name} | {measured / 2**20:.2f} | {planned / 2**20:.2f} | "
                     f"{planned / measured:.3f} |")
        print(lines[-1], flush=True)
    RESULTS.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(measured_peak(load_config("tiny", sys.argv[2:])))
    else:
        main()
