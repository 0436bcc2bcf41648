"""FLOPs of one PERK meta-step per device, counted in multiply-accumulates of the model's matrix products.

Per position and inner step, with B the frozen projections and LM head, A the eager attention products
(2 x sequence x hidden per layer) and R the LoRA branches (all in multiply-accumulates): a first-order step costs
4B + 6A + 6R FLOPs (forward, input gradients, LoRA gradients) and a kept step 8B + 16.6A + 17.5R (its outer
backward differentiates the backward too); the weighting model's no-grad base forward adds 2B + 2A once per task
(its hidden states are cached across steps) and the answer loss 4B + 6A + 6R per question token. Fitted to
``torch.utils.flop_counter.FlopCounterMode`` on CPU (tests/cluster/test_planner.py checks within 5 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perk_ray.config import PerkConfig
from perk_ray.errors import ConfigError
from perk_ray.plan.arch import Architecture, lora_targets
from perk_ray.plan.memory import QA_TOKENS, device_shape

FIRST_ORDER = (4.0, 6.0, 6.0)  # FLOPs per multiply-accumulate of (B, A, R)
KEPT = (8.0, 16.6, 17.5)
BASE_FORWARD = (2.0, 2.0, 0.0)
ANSWER = (4.0, 6.0, 6.0)


@dataclass(frozen=True)
class StepCompute:
    """FLOPs one device spends on one meta-step, and the meta-steps of the whole run."""

    flops: float
    meta_steps: int
    tasks_per_device: int


def _macs(arch: Architecture, cfg: PerkConfig, seq: int) -> tuple[float, float, float]:
    """Multiply-accumulates per position: (frozen projections + LM head, attention, LoRA)."""
    frozen = arch.num_layers * sum(a * b for a, b in arch.linears().values()) + arch.vocab_size * arch.hidden_size
    attention = arch.num_layers * 2 * seq * arch.hidden_size
    lora = arch.num_layers * sum(cfg.lora.rank * (a + b) for a, b in lora_targets(arch, cfg.lora).values())
    return frozen, attention, lora


def _flops(weights: tuple[float, float, float], macs: tuple[float, float, float]) -> float:
    return sum(w * m for w, m in zip(weights, macs))


def splits_batch(cfg: PerkConfig, world_size: int) -> bool:
    """Whether ``world_size`` workers can share a global batch: whole tasks per worker under ddp and fsdp (the
    batch a multiple of the workers), every task's chunks over all of them under cp."""
    return cfg.train.strategy == "cp" or cfg.outer.batch_size % world_size == 0


def check_batch_split(cfg: PerkConfig) -> None:
    """Refuse a global batch that the configured workers cannot share (the trainer checks the same)."""
    train = cfg.train
    if not splits_batch(cfg, train.num_workers):
        raise ConfigError(f"outer.batch_size={cfg.outer.batch_size} must be a multiple of train.num_workers="
                          f"{train.num_workers} for train.strategy={train.strategy}: it is the global batch, and each "
                          "worker meta-trains on whole tasks (the paper's 1 task per GPU on 8 GPUs is "
                          "outer.batch_size=8 train.num_workers=8)")


def step_compute(cfg: PerkConfig, arch: Architecture) -> StepCompute:
    """FLOPs per device per meta-step: data parallel strategies split the tasks, context parallelism the chunks."""
    inner, train = cfg.inner, cfg.train
    shape = device_shape(cfg)
    per_task = shape.positions * ((inner.steps - inner.truncation) * _flops(FIRST_ORDER, _macs(arch, cfg, shape.seq))
                                  + inner.truncation * _flops(KEPT, _macs(arch, cfg, shape.seq)))
    if inner.weighting == "mlp":
        per_task += shape.positions * _flops(BASE_FORWARD, _macs(arch, cfg, shape.seq))
    per_task += QA_TOKENS * _flops(ANSWER, _macs(arch, cfg, QA_TOKENS))
    batch = cfg.outer.batch_size
    tasks = batch if train.strategy == "cp" else math.ceil(batch / train.num_workers)
    return StepCompute(per_task * tasks, cfg.outer.epochs * math.ceil(cfg.data.train_count / batch), tasks)
