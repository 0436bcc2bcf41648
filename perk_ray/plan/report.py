"""The planner's report: inputs, memory per device, FLOPs, and GPU options as Markdown tables."""

from __future__ import annotations

import math

from perk_ray.config import PerkConfig
from perk_ray.plan.arch import lora_params, lora_targets, resolve_architecture
from perk_ray.plan.compute import check_batch_split, step_compute
from perk_ray.plan.gpus import (DEFAULT_HEADROOM, GIB, GPUS, MFU, RUNTIME_GIB, STRATEGIES, evaluate, get_gpu,
                                fitting_options, recommend, with_train)
from perk_ray.plan.memory import device_shape, estimate_memory


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def _usd(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def plan_report(cfg: PerkConfig, headroom: float = DEFAULT_HEADROOM, gpu: str | None = None) -> str:
    """The full report for ``cfg``; ``gpu`` restricts the GPU table to one kind."""
    check_batch_split(cfg)
    arch = resolve_architecture(cfg.model)
    kinds = [get_gpu(gpu)] if gpu else list(GPUS.values())
    inner, train = cfg.inner, cfg.train
    shape = device_shape(cfg)
    memory = estimate_memory(cfg, arch)
    compute = step_compute(cfg, arch)
    lines = [
        f"## {cfg.preset}: {cfg.model.name} ({arch.num_params() / 1e9:.3g} B parameters, {cfg.model.dtype})",
        "",
        f"Inputs: LoRA rank {cfg.lora.rank} on {len(lora_targets(arch, cfg.lora))} projections x {arch.num_layers} "
        f"layers ({lora_params(arch, cfg.lora) / 1e6:.1f} M parameters); context {max(cfg.data.lengths)} tokens = "
        f"{math.ceil(max(cfg.data.lengths) / inner.chunk_tokens)} chunks of {shape.seq} positions "
        f"({shape.positions // shape.seq} per device), micro-batch "
        f"{inner.micro_batch_chunks} chunks; K={inner.steps}, T={inner.truncation}; strategy {train.strategy} x "
        f"{train.num_workers}; outer batch {cfg.outer.batch_size} ({compute.tasks_per_device} per device), "
        f"{compute.meta_steps} meta-steps ({cfg.data.train_count} tasks x {cfg.outer.epochs} epochs).",
        "",
        "| memory per device | GiB |",
        "|---|---:|",
        *(f"| {name} | {_gib(value)} |" for name, value in memory.rows()),
        "",
        f"Per device: {compute.flops / 1e12:.1f} TFLOP per meta-step. Total per device by strategy at "
        f"{train.num_workers} workers: " + ", ".join(
            f"{s} {_gib(estimate_memory(with_train(cfg, strategy=s), arch).total)} GiB" for s in STRATEGIES) + ".",
        "",
        f"GPU options (usable = memory x {1 - headroom:.2f} headroom - {RUNTIME_GIB} GiB runtime; time at "
        f"{MFU:.0%} of dense BF16 peak; $ at the assumed price per GPU-hour):",
        "",
        f"| GPU | usable GiB | fits at {train.num_workers} | smallest fit | s / meta-step | run hours | run $ "
        "| $ / 1k meta-steps | $/GPU-h |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in kinds:
        at_size = evaluate(cfg, arch, kind, headroom)
        smallest = min((o.world_size for o in fitting_options(cfg, arch, kind, headroom)), default=None)
        lines.append(
            f"| {kind.name} | {_gib(at_size.usable_bytes)} | {'yes' if at_size.fits else 'no'} | "
            f"{smallest or '-'} | {at_size.step_seconds:.2f} | {at_size.run_hours:.2f} | "
            f"{_usd(at_size.run_usd)} | {_usd(at_size.usd_per_1k_steps)} | {kind.usd_per_hour:.2f} |")
    best = recommend(cfg, arch, headroom, kinds)
    lines.append("")
    if best is None:
        lines.append("Recommendation: nothing fits on up to 64 devices with any strategy; lower inner.truncation, "
                     "lora.rank, inner.chunk_tokens or inner.micro_batch_chunks.")
    else:
        switch = "" if best.strategy == train.strategy else (
            f"nothing fits with {train.strategy}; switch to train.strategy={best.strategy}: ")
        lines.append(
            f"Recommendation: {switch}{best.world_size} x {best.gpu.name} (AWS {best.gpu.aws}, GCP {best.gpu.gcp}), "
            f"{_gib(best.memory.total)} of {_gib(best.usable_bytes)} usable GiB per device; "
            f"{best.step_seconds:.2f} s per meta-step, about {best.run_hours:.2f} h and ${_usd(best.run_usd)} for "
            f"the {best.meta_steps} meta-steps (${_usd(best.usd_per_1k_steps)} per 1000).")
    return "\n".join(lines)
