"""Measured (not assumed) memory properties: truncation bounds the meta-step, micro-batching bounds encoding."""

from __future__ import annotations


from perk_ray.engine import PerkEngine
from perk_ray.meta import MetaParams, prepare_task, task_loss
from perk_ray.profiling import PeakMemory
from tests.conftest import tiny_base, tiny_config

SIZE = ["model.tiny.hidden_size=128", "model.tiny.intermediate_size=512", "inner.chunk_tokens=128",
        "inner.micro_batch_chunks=8"]
CONTEXT = "The code of lemon is seven. The code of apple is three. " * 20


def _meta_step_peak_mib(steps: int, truncation: int) -> float:
    cfg = tiny_config(*SIZE, f"inner.steps={steps}", f"inner.truncation={truncation}")
    base = tiny_base(cfg)
    meta = MetaParams.from_base(base, cfg)
    task = prepare_task(base.tokenizer, cfg, CONTEXT, ["What is the code of apple?"], ["three"])
    task_loss(base, meta, task, cfg).loss.backward()  # warm-up: allocator and lazy initialisation
    with PeakMemory() as mem:
        task_loss(base, meta, task, cfg).loss.backward()
    return mem.peak_mib


def test_meta_step_memory_grows_with_truncation_not_with_steps():
    t0, t1, t2 = (_meta_step_peak_mib(4, t) for t in (0, 1, 2))
    k8 = _meta_step_peak_mib(8, 1)
    assert t0 < t1 < t2, (t0, t1, t2)
    assert t2 - t1 > 0.5 * (t1 - t0)  # each kept step adds a comparable graph
    assert abs(k8 - t1) < 0.25 * (t1 - t0) + 8, (k8, t1)  # doubling K at the same T adds ~nothing


def _encode_peak_mib(engine: PerkEngine, repeats: int) -> float:
    context = "The code of lemon is seven. The code of apple is three. " * repeats
    engine.encode(context[: len(context) // 4])  # warm-up
    with PeakMemory() as mem:
        engine.encode(context)
    return mem.peak_mib


def test_encoding_memory_is_flat_in_context_length_under_micro_batching():
    engine = PerkEngine.from_config(tiny_config(*SIZE, "inner.encode_micro_batch_chunks=2"))
    base_len = 20  # 1120 tokens -> 9 chunks
    peaks = {x: _encode_peak_mib(engine, base_len * x) for x in (1, 4, 16)}
    unbatched = PerkEngine.from_config(tiny_config(*SIZE, "inner.encode_micro_batch_chunks=1000"))
    growth = _encode_peak_mib(unbatched, base_len * 16) - _encode_peak_mib(unbatched, base_len)
    assert growth > 40, growth  # the measurement sees activation memory when it does grow...
    assert peaks[16] - peaks[1] < 0.15 * growth + 4, (peaks, growth)  # ...and micro-batching keeps it flat
    assert max(peaks.values()) < 0.5 * growth
