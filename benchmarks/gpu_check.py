"""One GPU check: Qwen2.5-0.5B's architecture (random weights, bf16, rank-256 LoRA on every projection) on one GPU.

    make gpu-check                                              # one NVIDIA GPU: budgeted for 8 minutes on an H100
    PYTHONPATH=. python benchmarks/gpu_check.py --cpu-smoke     # tiny shapes on CPU, under a minute (CI)

It needs torch, transformers, peft and pydantic, and neither Ray, a network nor a model hub. Three parts, each with
a time budget (what does not fit is recorded as skipped) and its errors recorded rather than raised:

1. ``meta_step``: one meta-step at 1k tokens (K=4, T=2): time, peak memory against the planner (``perk_ray.plan``),
   and the bf16 meta-gradient against the float32 one from the same weights and initialisation (cosine).
2. ``training_loop``: ``perk_ray.train.loop`` under a real process group of world size 1 (NCCL; gloo on CPU):
   3 steps with a checkpoint at step 2, then a fresh trainer resumed from it runs step 3; the meta-parameters of
   both runs must be equal.
3. ``encoding``: PERK (encode with ``inner.encode_micro_batch_chunks``, then answer) against the context in the
   prompt, both with SDPA, from 1k to 128k tokens: time and peak memory per length, OOM recorded as OOM, beside
   the paper's H100 figures.

The base model is written once with random weights and loaded through ``model.pretrained_dir`` with the byte-level
tokenizer (one character is one token), so the code paths are the library's own. Peak memory on GPU is
``torch.cuda.max_memory_allocated`` (absolute) and the peak above the level before the measured call; on CPU only
the latter (sampled RSS). Results: ``benchmarks/results/gpu/gpu_check.{json,md}`` (CPU: ``runs/gpu_check/cpu_smoke.*``).
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from bench_utils import RESULTS, ROOT, machine_info, quiet_warnings, table, write_results

QWEN2_5_0_5B = {  # Qwen/Qwen2.5-0.5B's config.json; rotary positions have no table, so 32768 -> 128k+ is free
    "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "intermediate_size": 4864, "vocab_size": 151936, "tie_word_embeddings": True, "rope_theta": 1e6,
    "rms_norm_eps": 1e-6, "max_position_embeddings": 135168,
}
TINY_QWEN2 = {
    "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "intermediate_size": 128, "vocab_size": 512, "tie_word_embeddings": True, "rope_theta": 1e6,
    "rms_norm_eps": 1e-6, "max_position_embeddings": 2048,
}
# PERK paper, Qwen2.5-0.5B on one H100: (peak GB, seconds); None where prompt-based answering ran out of memory
PAPER = {8192: {"perk": (5.9, 8.5)}, 65536: {"perk": (19.6, 11.4), "prompt": (55.7, 32.6)},
         131072: {"perk": (35.2, 20.9), "prompt": None}}
QUESTION = "What is the code of item 0?"
PARTS = ("meta_step", "training_loop", "encoding")


@dataclass(frozen=True)
class Scale:
    """What a run measures: the architecture, overrides of the qwen2.5-0.5b preset, sizes and time budgets."""

    name: str
    device: str
    backend: str
    architecture: dict[str, Any]
    overrides: tuple[str, ...]
    meta_tokens: int
    timed_steps: int
    encode_lengths: tuple[int, ...]
    max_new_tokens: int
    budgets: dict[str, float]  # seconds per part; "total" caps the whole run
    threads: int | None = None


GPU = Scale("gpu", "cuda", "nccl", QWEN2_5_0_5B, (), 1024, 3, tuple(1024 * 2**i for i in range(8)), 16,
            {"meta_step": 110, "training_loop": 130, "encoding": 300, "total": 450})
CPU_SMOKE = Scale("cpu-smoke", "cpu", "gloo", TINY_QWEN2,
                  ("lora.rank=8", "inner.chunk_tokens=32", "inner.micro_batch_chunks=2",
                   "inner.encode_micro_batch_chunks=4"),
                  128, 1, (128, 256), 4, {"meta_step": 60, "training_loop": 60, "encoding": 60, "total": 170},
                  threads=1)


@dataclass
class Budget:
    """Seconds a part may still spend."""

    seconds: float
    start: float = field(default_factory=time.perf_counter)

    @property
    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


def document(tokens: int, seed: int = 0) -> tuple[str, str]:
    """A context of ``tokens`` byte-tokenizer tokens (``tokens - 1`` characters: the chunker puts a space before a
    segment) of numbered facts, and item 0's code."""
    rng = random.Random(seed)
    facts, size = [], 0
    while size < tokens:
        facts.append(f"The code of item {len(facts)} is {rng.randint(1000, 9999)}. ")
        size += len(facts[-1])
    return "".join(facts)[: tokens - 1], facts[0].split()[-1].rstrip(".")


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measured(device: str, fn: Callable[[], Any]) -> tuple[Any, float, dict[str, int]]:
    """``fn()``, its wall seconds and peak memory: ``peak_bytes`` (CUDA allocator, absolute) and
    ``peak_above_bytes`` (above the level at the call: CUDA allocator, or sampled RSS on CPU)."""
    from perk_ray.profiling import PeakMemory

    with PeakMemory(device) as mem:
        start = time.perf_counter()
        out = fn()
    seconds = time.perf_counter() - start  # PeakMemory synchronises CUDA on exit
    peaks = {"peak_above_bytes": mem.peak_bytes}
    if device == "cuda":
        peaks["peak_bytes"] = torch.cuda.max_memory_allocated()
    return out, seconds, peaks


def write_base(scale: Scale, directory: Path, dtype: torch.dtype) -> int:
    """A randomly initialised Qwen2 of ``scale.architecture`` saved as a transformers folder; its parameter count."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**scale.architecture)).to(dtype)
    model.save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def check_config(scale: Scale, base_dir: Path, *overrides: str):
    """The qwen2.5-0.5b preset on the random base, one device, the check's sizes, then ``overrides``."""
    from perk_ray.config import load_config

    return load_config("qwen2.5-0.5b", [
        "model.name=tiny", f"model.pretrained_dir={base_dir}", "train.strategy=ddp", "train.num_workers=1",
        f"data.lengths=[{scale.meta_tokens}]", f"inner.max_context_tokens={max(scale.encode_lengths) + 1}",
        f"outer.max_new_tokens={scale.max_new_tokens}", *scale.overrides, *overrides])


def meta_gradient(base, meta, task, cfg) -> dict[str, torch.Tensor]:
    """One task's meta-gradient (no dropout), flattened per group of meta-parameters, float64 on CPU."""
    from perk_ray.meta import task_loss

    base.model.eval()
    meta.zero_grad(set_to_none=True)
    task_loss(base, meta, task, cfg).loss.backward()
    groups: dict[str, list[torch.Tensor]] = {}
    for name, p in meta.named_parameters():
        if p.requires_grad:
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            groups.setdefault(name.split(".")[0], []).append(grad.detach().reshape(-1).double().cpu())
    return {group: torch.cat(parts) for group, parts in groups.items()}


def cosines(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> dict[str, float]:
    out = {g: float(torch.nn.functional.cosine_similarity(a[g], b[g], dim=0)) for g in a}
    out["all"] = float(torch.nn.functional.cosine_similarity(torch.cat(list(a.values())), torch.cat(list(b.values())),
                                                             dim=0))
    return out


def check_meta_step(scale: Scale, base_dir: Path, budget: Budget) -> dict[str, Any]:
    from perk_ray.meta import MetaParams, build_outer_optimizer, meta_step, prepare_task
    from perk_ray.model import load_base_model
    from perk_ray.plan import estimate_memory, resolve_architecture

    cfg = check_config(scale, base_dir)
    base = load_base_model(cfg.model, cfg.lora, scale.device)
    meta = MetaParams.from_base(base, cfg)
    initial = {k: v.detach().clone() for k, v in meta.state_dict().items()}
    text, answer = document(scale.meta_tokens)
    task = prepare_task(base.tokenizer, cfg, text, [QUESTION], [answer]).to(scale.device)
    grad_low = meta_gradient(base, meta, task, cfg)

    optimizer, scheduler = build_outer_optimizer(meta, cfg, 100)
    base.model.train(cfg.lora.dropout > 0)
    step = functools.partial(meta_step, base, meta, [task], cfg, optimizer, scheduler)
    steps = []
    for i in range(1 + scale.timed_steps):  # the first is a warm-up: allocations, kernel choice, AdamW moments
        stats, seconds, peaks = measured(scale.device, step)
        steps.append({"seconds": seconds, "outer_loss": stats.outer_loss, "grad_norm": stats.grad_norm, **peaks})
        if i and budget.left < 2 * seconds:
            break
    timed = steps[1:] or steps
    plan = estimate_memory(cfg, resolve_architecture(cfg.model))
    out: dict[str, Any] = {
        "tokens": task.chunks.num_context_tokens, "chunks": task.chunks.num_chunks, "K": cfg.inner.steps,
        "T": cfg.inner.truncation, "dtype": cfg.model.dtype, "lora_rank": cfg.lora.rank,
        "steps": steps, "step_seconds": min(s["seconds"] for s in timed),
        "peak_above_bytes": max(s["peak_above_bytes"] for s in timed),
        "planner": {"total_bytes": plan.total, "meta_step_bytes": plan.meta_step, "static_bytes": plan.static},
    }
    out["peak_above_over_planner_meta_step"] = out["peak_above_bytes"] / plan.meta_step
    if scale.device == "cuda":
        out["peak_bytes"] = max(s["peak_bytes"] for s in timed)
        out["peak_over_planner_total"] = out["peak_bytes"] / plan.total
    del base, meta, optimizer, scheduler, task
    free_memory()
    if budget.left < 2 * out["step_seconds"] + 10:
        out["float32_gradient"] = {"status": "skipped", "reason": f"{budget.left:.0f} s left of the part's budget"}
        return out

    cfg32 = check_config(scale, base_dir, "model.dtype=float32")
    base = load_base_model(cfg32.model, cfg32.lora, scale.device)
    meta = MetaParams.from_base(base, cfg32)
    meta.load_state_dict(initial)
    task = prepare_task(base.tokenizer, cfg32, text, [QUESTION], [answer]).to(scale.device)
    grad_full, seconds, peaks = measured(scale.device, lambda: meta_gradient(base, meta, task, cfg32))
    error = torch.cat(list(grad_low.values())) - torch.cat(list(grad_full.values()))
    out["float32_gradient"] = {"status": "ok", "cosine": cosines(grad_low, grad_full), "seconds": seconds, **peaks,
                               "relative_error": float(error.norm() / torch.cat(list(grad_full.values())).norm())}
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_training_loop(scale: Scale, base_dir: Path, work: Path) -> dict[str, Any]:
    """3 steps with a checkpoint at step 2; a fresh trainer restored from it runs step 3 again (no early stop: the
    resume is the point)."""
    from perk_ray.train.loop import MetaTrainer, run_meta_training

    cfg = check_config(scale, base_dir, "train.max_steps=3", "train.checkpoint_every=2", "train.eval_every=1000",
                       "outer.batch_size=1", "train.log_every=1")
    records = []
    for i in range(4):
        text, answer = document(scale.meta_tokens, seed=i + 1)
        records.append({"id": f"r{i}", "context": [text], "question": QUESTION, "answer": [answer], "support": []})

    def run(trainer: MetaTrainer, scratch: Path) -> tuple[list[dict], dict[int, Path]]:
        metrics, checkpoints = [], {}

        def report(m: dict[str, float], checkpoint: Path | None) -> None:
            metrics.append(dict(m))
            if checkpoint is not None:
                checkpoints[int(m["step"])] = checkpoint

        run_meta_training(trainer, report, scratch, log=lambda line: print(f"  {line}", flush=True))
        return metrics, checkpoints

    if scale.backend == "nccl":
        torch.cuda.set_device(0)
    kwargs = {"device_id": torch.device("cuda", 0)} if scale.backend == "nccl" else {}
    dist.init_process_group(scale.backend, init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1,
                            **kwargs)
    try:
        trainer = MetaTrainer(cfg, records, [], scale.device)
        first, checkpoints = run(trainer, work / "first")
        final = {k: v.detach().cpu().clone() for k, v in trainer.meta.state_dict().items()}
        del trainer
        free_memory()
        resumed = MetaTrainer(cfg, records, [], scale.device)
        resumed.restore(checkpoints[2])
        resumed_from = resumed.step
        again, _ = run(resumed, work / "resumed")
        replayed = {k: v.detach().cpu() for k, v in resumed.meta.state_dict().items()}
    finally:
        dist.destroy_process_group()
    diff = max(float((final[k].double() - replayed[k].double()).abs().max()) for k in final)
    size = sum(p.stat().st_size for p in checkpoints[2].rglob("*") if p.is_file())
    return {"backend": scale.backend, "world_size": 1, "steps": first, "resumed_steps": again,
            "resumed_from_step": resumed_from, "checkpoint_bytes": size,
            "resume_exact": all(torch.equal(final[k], replayed[k]) for k in final), "resume_max_abs_diff": diff,
            "step3_outer_loss": [first[-1]["outer_loss"], again[-1]["outer_loss"]]}


def check_encoding(scale: Scale, base_dir: Path, budget: Budget) -> dict[str, Any]:
    from perk_ray.engine import PerkEngine

    cfg = check_config(scale, base_dir, "model.attn_implementation=sdpa")
    engine = PerkEngine.from_config(cfg, scale.device)
    plain = engine.initial_memory()  # LoRA B is zero: exactly the plain base model

    def perk(text: str) -> dict[str, float]:
        start = time.perf_counter()
        memory = engine.encode(text)
        encoded = time.perf_counter()
        engine.answer(memory, [QUESTION], scale.max_new_tokens)
        return {"encode_s": encoded - start, "answer_s": time.perf_counter() - encoded, "chunks": memory.num_chunks}

    def prompt(text: str) -> dict[str, float]:
        engine.generate(plain, [f"{text}\n{QUESTION}\nAnswer:"], scale.max_new_tokens)
        return {}

    warm, _ = document(scale.encode_lengths[0])
    perk(warm)  # warm-up: allocations, kernel choice
    prompt(warm)
    rows: list[dict[str, Any]] = []
    skipped: list[int] = []
    last: tuple[int, float] | None = None
    for n in scale.encode_lengths:
        if last is not None and budget.left < last[1] * 2.2 * n / last[0]:  # PERK's time grows about linearly
            skipped = [m for m in scale.encode_lengths if m >= n]
            break
        text, _ = document(n)
        spent = 0.0
        for side, fn in (("perk", perk), ("prompt", prompt)):
            row: dict[str, Any] = {"tokens": n, "side": side}
            try:
                extra, seconds, peaks = measured(scale.device, functools.partial(fn, text))
                row.update(status="ok", seconds=seconds, **peaks, **extra)
                spent += seconds
            except (torch.cuda.OutOfMemoryError, MemoryError) as err:
                row.update(status="OOM", error=str(err).splitlines()[0][:300])
            free_memory()
            rows.append(row)
            print(f"  {n:>6} tokens {side:>6}: {row['status']} {row.get('seconds', float('nan')):.2f} s "
                  f"{row.get('peak_bytes', row.get('peak_above_bytes', 0)) / 2**30:.2f} GiB", flush=True)
        last = (n, spent)
    return {"attn_implementation": cfg.model.attn_implementation, "chunk_tokens": cfg.inner.chunk_tokens,
            "encode_micro_batch_chunks": cfg.inner.encode_micro_batch_chunks, "max_new_tokens": scale.max_new_tokens,
            "rows": rows, "skipped_lengths": skipped, "paper_h100": {str(k): v for k, v in PAPER.items()}}


def run_part(name: str, fn: Callable[[Budget], dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Run one part within its budget; an exception is recorded (type, message, where), not raised."""
    budget = Budget(seconds)
    print(f"{name} (budget {seconds:.0f} s)", flush=True)
    if seconds <= 0:
        return {"status": "skipped", "reason": "no time left of the total budget", "budget_s": seconds}
    try:
        out = {"status": "ok", **fn(budget)}
    except Exception as err:  # noqa: BLE001 - one part's failure must not hide the others' results
        out = {"status": "error", "error": f"{type(err).__name__}: {str(err)[:2000]}",
               "where": traceback.format_exc(limit=-4)[-3000:]}
        print(out["where"], file=sys.stderr, flush=True)
    free_memory()
    out.update(seconds=time.perf_counter() - budget.start, budget_s=seconds)
    print(f"{name}: {out['status']} in {out['seconds']:.1f} s", flush=True)
    return out


def gib(value: float | None) -> float | None:
    return None if value is None else value / 2**30


def markdown(report: dict[str, Any]) -> str:
    m, loop, enc = report["meta_step"], report["training_loop"], report["encoding"]
    lines = [f"## GPU check ({report['mode']})\n",
             f"{report['machine'].get('gpu') or 'CPU'}, torch {report['machine']['torch']}, transformers "
             f"{report['machine']['transformers']}, peft {report['peft']}; {report['wall_s']:.0f} s in all "
             f"(budget {report['budget_s']:.0f} s). Model: {report['model']['parameters']:,} random base parameters "
             f"({report['model']['architecture']['num_hidden_layers']} layers, hidden "
             f"{report['model']['architecture']['hidden_size']}), {report['model']['dtype']}.\n",
             f"### 1. Meta-step: {m['status']}\n"]
    if m["status"] == "ok":
        f32 = m["float32_gradient"]
        lines += [table([{"what": "tokens / chunks / K / T / LoRA rank",
                          "value": f"{m['tokens']} / {m['chunks']} / {m['K']} / {m['T']} / {m['lora_rank']}"},
                         {"what": "step seconds (best timed)", "value": m["step_seconds"]},
                         {"what": "peak GiB (max_memory_allocated)", "value": gib(m.get("peak_bytes"))},
                         {"what": "planner total GiB", "value": gib(m["planner"]["total_bytes"])},
                         {"what": "peak above the step's start GiB", "value": gib(m["peak_above_bytes"])},
                         {"what": "planner meta-step GiB", "value": gib(m["planner"]["meta_step_bytes"])},
                         {"what": "bf16 vs fp32 meta-gradient cosine (all)", "value": f32.get("cosine", {}).get("all")},
                         {"what": "per group", "value": ", ".join(f"{k} {v:.4f}" for k, v in
                                                                  f32.get("cosine", {}).items() if k != "all")},
                         {"what": "relative error norm(g_bf16 - g_fp32) / norm(g_fp32)",
                          "value": f32.get("relative_error")}],
                        [("what", "meta-step"), ("value", "measured")]), ""]
    else:
        lines.append(f"`{m.get('error', m.get('reason'))}`\n")
    lines.append(f"### 2. Training loop ({report['scale']['backend']}, world size 1): {loop['status']}\n")
    if loop["status"] == "ok":
        lines += [table([{**s, "run": "first"} for s in loop["steps"]] +
                        [{**s, "run": f"resumed from step {loop['resumed_from_step']}"} for s in loop["resumed_steps"]],
                        [("run", "run"), ("step", "step"), ("outer_loss", "outer loss"),
                         ("step_seconds", "s/step"), ("peak_mib", "peak MiB")]),
                  f"\nResume exact: **{loop['resume_exact']}** (max abs difference of the meta-parameters "
                  f"{loop['resume_max_abs_diff']:.3g}); checkpoint {loop['checkpoint_bytes'] / 2**20:.1f} MiB.\n"]
    else:
        lines.append(f"`{loop.get('error', loop.get('reason'))}`\n")
    lines.append(f"### 3. Encoding versus context in the prompt: {enc['status']}\n")
    if enc["status"] == "ok":
        by = {(r["tokens"], r["side"]): r for r in enc["rows"]}
        rows = []
        for n in sorted({r["tokens"] for r in enc["rows"]} | set(enc["skipped_lengths"])):
            row: dict[str, Any] = {"tokens": n}
            for side in ("perk", "prompt"):
                r = by.get((n, side), {"status": "skipped"})
                row[f"{side}_s"] = r.get("seconds") if r["status"] == "ok" else r["status"]
                row[f"{side}_gib"] = gib(r.get("peak_bytes", r.get("peak_above_bytes"))) if r["status"] == "ok" else "-"
                paper = PAPER.get(n, {})
                if side in paper:
                    row[f"paper_{side}"] = "OOM" if paper[side] is None else f"{paper[side][0]} GB / {paper[side][1]} s"
            rows.append(row)
        lines += [table(rows, [("tokens", "tokens"), ("perk_s", "PERK s"), ("perk_gib", "PERK peak GiB"),
                               ("paper_perk", "paper PERK"), ("prompt_s", "prompt s"),
                               ("prompt_gib", "prompt peak GiB"), ("paper_prompt", "paper prompt")]),
                  f"\nPERK: {enc['chunk_tokens']}-token chunks, {enc['encode_micro_batch_chunks']} chunks per "
                  f"encoding micro-batch, then answering; both sides SDPA, {enc['max_new_tokens']} new tokens. "
                  f"Skipped for time: {enc['skipped_lengths'] or 'none'}.\n"]
    else:
        lines.append(f"`{enc.get('error', enc.get('reason'))}`\n")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on CPU (the default without CUDA)")
    p.add_argument("--out-dir", default=None,
                   help="default benchmarks/results/gpu on GPU, runs/gpu_check (not committed) for the CPU smoke run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    try:
        import pydantic  # noqa: F401 - perk_ray.config's one need beyond torch, transformers and peft
    except ImportError:
        sys.exit("gpu_check needs pydantic (perk_ray.config): pip install pydantic, or offline `make gpu-check` with "
                 "the wheels of `make gpu-wheels` (see the Makefile)")
    if not args.cpu_smoke and not torch.cuda.is_available():
        print("no CUDA device: running the CPU smoke version (--cpu-smoke)", flush=True)
    scale = CPU_SMOKE if args.cpu_smoke or not torch.cuda.is_available() else GPU
    if scale.threads:
        torch.set_num_threads(scale.threads)
    quiet_warnings()
    import peft
    from transformers.utils import logging

    logging.disable_progress_bar()

    start = time.perf_counter()
    total = Budget(scale.budgets["total"])
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        parameters = write_base(scale, work / "base", torch.bfloat16)
        print(f"{scale.name}: random Qwen2, {parameters:,} parameters, written in {time.perf_counter() - start:.0f} s",
              flush=True)
        parts = {"meta_step": lambda b: check_meta_step(scale, work / "base", b),
                 "training_loop": lambda _: check_training_loop(scale, work / "base", work),
                 "encoding": lambda b: check_encoding(scale, work / "base", b)}
        results = {name: run_part(name, fn, min(scale.budgets[name], total.left)) for name, fn in parts.items()}
    report = {"check": "gpu_check", "mode": scale.name, "machine": machine_info(torch.get_num_threads()),
              "peft": peft.__version__, "cuda": torch.version.cuda, "scale": {
                  "device": scale.device, "backend": scale.backend, "overrides": list(scale.overrides),
                  "budgets_s": scale.budgets},
              "model": {"architecture": scale.architecture, "parameters": parameters, "dtype": "bfloat16"},
              **results, "budget_s": scale.budgets["total"], "wall_s": time.perf_counter() - start}
    if scale.device == "cuda":
        report["machine"]["gpu_memory_bytes"] = torch.cuda.get_device_properties(0).total_memory
    text = markdown(report)
    out = Path(args.out_dir or (RESULTS / "gpu" if scale.device == "cuda" else ROOT / "runs" / "gpu_check"))
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("gpu_check" if scale.device == "cuda" else "cpu_smoke")
    write_results(stem, report, text)
    print(f"\n{text}\nwrote {stem}.json and {stem}.md", flush=True)
    return report


if __name__ == "__main__":
    result = main()
    sys.exit(0 if all(result[part]["status"] == "ok" for part in PARTS) else 1)
