"""The meta-training loop one worker runs: deterministic global batches, meta-steps, dev accuracy, checkpoints.

The same loop runs under Ray Train (``perk_ray.train.ray_trainer``) and under plain ``torch.distributed``; all
randomness derives from (seed, step, index), and dropout's from (seed, rank, step), so a resumed run replays exactly
what an uninterrupted run does, on CPU and GPU, with no RNG state saved.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist

from perk_ray.checkpoint import load_meta_params, load_train_state, save_meta_checkpoint
from perk_ray.config import PerkConfig
from perk_ray.engine import PerkEngine
from perk_ray.evaluation.metrics import exact_match
from perk_ray.meta import MetaParams, build_outer_optimizer, meta_step, prepare_task
from perk_ray.model import BaseModel, load_base_model
from perk_ray.profiling import PeakMemory
from perk_ray.train.collectives import reduce_values
from perk_ray.train.distributed import Strategy, all_reduce_meta_grads, frozen_param_bytes

logger = logging.getLogger(__name__)

Record = dict[str, Any]


class Reporter(Protocol):
    """Where metrics and checkpoints go (Ray Train's report, or a local directory)."""

    def __call__(self, metrics: dict[str, float], checkpoint_dir: Path | None) -> None: ...


def steps_per_epoch(num_records: int, batch_size: int) -> int:
    return max(1, num_records // batch_size)


def total_steps(cfg: PerkConfig, num_records: int) -> int:
    full = cfg.outer.epochs * steps_per_epoch(num_records, cfg.outer.batch_size)
    return min(full, cfg.train.max_steps) if cfg.train.max_steps else full


def global_batch_indices(num_records: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Record indices of global batch ``step``: a fresh permutation each epoch, seeded by (seed, epoch)."""
    per_epoch = steps_per_epoch(num_records, batch_size)
    epoch, position = divmod(step, per_epoch)
    order = torch.randperm(num_records, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[position * batch_size : (position + 1) * batch_size].tolist()


def record_task(base: BaseModel, cfg: PerkConfig, record: Record, seed: int, step: int, index: int):
    """Tokenise a record; the chunk-id shuffle is seeded by (seed, step, index) so replays are exact."""
    generator = torch.Generator().manual_seed(hash((seed, step, index)) & 0x7FFF_FFFF)
    support = record.get("support")
    return prepare_task(base.tokenizer, cfg, list(record["context"]), [record["question"]], [list(record["answer"])[0]],
                        [list(support) if support is not None else []], generator=generator).to(base.device)


def seed_step(seed: int, rank: int, step: int) -> None:
    """Seed the global RNGs that dropout draws from (CPU and every CUDA device) for meta-step ``step`` on ``rank``.

    Ranks draw different masks: their tasks (or, under cp, their chunks) are different samples. The streams that
    must agree over ranks (initialisation, batch order, chunk shuffles) have generators of their own.
    """
    torch.manual_seed(hash((seed, rank, step)) & 0x7FFF_FFFF)


@dataclass
class StepMetrics:
    step: int
    outer_loss: float
    inner_loss_first: float
    inner_loss_last: float
    grad_norm: float
    tokens_per_s: float
    step_seconds: float
    peak_mib: float
    frozen_mib: float  # frozen base weights resident on this rank during the step (max over ranks)
    lr: float
    inner_lrs: list[float]  # geometric mean over LoRA tensors of each inner step's learned rate


class MetaTrainer:
    """Owns the model, meta-parameters, outer optimiser and strategy of one worker."""

    def __init__(self, cfg: PerkConfig, train: Sequence[Record], dev: Sequence[Record], device: str = "cpu"):
        if len(train) < cfg.outer.batch_size:
            raise ValueError(f"data: {len(train)} training records, fewer than outer.batch_size={cfg.outer.batch_size}")
        torch.manual_seed(cfg.train.seed)
        self.cfg = cfg
        self.train, self.dev = list(train), list(dev)
        self.base = load_base_model(cfg.model, cfg.lora, device)
        self.meta = MetaParams.from_base(self.base, cfg)
        self.frozen_bytes_full = frozen_param_bytes(self.base)
        self.strategy = Strategy.create(cfg.train.strategy, self.base, cfg.train.fsdp_full_shard)
        self.frozen_bytes_at_rest = frozen_param_bytes(self.base)
        self.total_steps = total_steps(cfg, len(self.train))
        self.optimizer, self.scheduler = build_outer_optimizer(self.meta, cfg, self.total_steps)
        self.step = 0

    def restore(self, checkpoint_dir: Path) -> None:
        """Resume meta-parameters, optimiser, scheduler and step from a meta-checkpoint."""
        load_meta_params(checkpoint_dir, self.base, self.meta)
        state = load_train_state(checkpoint_dir)
        if state is None:
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]

    def train_state(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "step": self.step}

    def frozen_bytes_in_step(self) -> int:
        """Frozen weight bytes resident on this rank during a meta-step: all of them unless fully sharded, then the
        shards plus the largest weight gathered at once."""
        gathers = self.strategy.gathers
        return self.frozen_bytes_at_rest + gathers.peak if gathers is not None else self.frozen_bytes_full

    def run_step(self) -> StepMetrics:
        cfg, strategy = self.cfg, self.strategy
        indices = global_batch_indices(len(self.train), cfg.outer.batch_size, cfg.train.seed, self.step)
        tasks, totals = [], []
        for j, i in strategy.my_tasks(list(enumerate(indices))):
            task, total = strategy.shard_task(record_task(self.base, cfg, self.train[i], cfg.train.seed, self.step, j))
            tasks.append(task)
            totals.append(total)
        self.base.model.train(cfg.lora.dropout > 0)
        seed_step(cfg.train.seed, strategy.rank, self.step)
        strategy.check_lockstep([-(-t.chunks.num_chunks // cfg.inner.micro_batch_chunks) for t in tasks])
        start = time.perf_counter()
        strategy.before_step()
        with PeakMemory(self.base.device) as mem:
            stats = meta_step(self.base, self.meta, tasks, cfg, self.optimizer, self.scheduler,
                              global_batch=strategy.loss_scale(len(indices)), sync_grads=all_reduce_meta_grads,
                              grad_reduce=strategy.grad_reduce, total_tokens=totals)
        strategy.after_step()
        seconds = time.perf_counter() - start
        self.step += 1
        tokens = stats.context_tokens if strategy.name != "cp" or strategy.rank == 0 else 0
        device = self.base.device
        tokens, = reduce_values([float(tokens)], device)
        peak, frozen = reduce_values([mem.peak_mib, self.frozen_bytes_in_step() / 2**20], device, dist.ReduceOp.MAX)
        n = len(tasks) or 1
        loss_sum, first_sum, last_sum, count = reduce_values(
            [stats.outer_loss * len(tasks), stats.inner_first * len(tasks), stats.inner_last * len(tasks), len(tasks)],
            device)
        count = count or n
        return StepMetrics(self.step, loss_sum / count, first_sum / count, last_sum / count, stats.grad_norm,
                           tokens / seconds, seconds, peak, frozen, self.scheduler.get_last_lr()[0],
                           self.inner_lr_means())

    def inner_lr_means(self) -> list[float]:
        """Each inner step's learned rate, as a geometric mean over the LoRA tensors (how the rates moved)."""
        logs = torch.stack([p.detach().float().cpu() for p in self.meta.log_inner_lrs.values()])
        return logs.mean(dim=0).exp().tolist()

    def dev_accuracy(self, limit: int | None = None) -> float:
        """Exact-match accuracy of PERK answers on the dev records (shared over ranks)."""
        records = self.dev[:limit] if limit else self.dev
        if not records:
            return float("nan")
        engine = PerkEngine(self.cfg, self.base, self.meta)
        mine = self.strategy.my_eval_records(records)
        self.strategy.before_step()
        correct = 0
        for record in mine:
            memory = engine.encode(list(record["context"]))
            correct += exact_match(engine.answer(memory, [record["question"]])[0], list(record["answer"]))
        self.strategy.after_step()
        if len(mine) == len(records):  # every rank saw every record
            return correct / len(records)
        total_correct, = reduce_values([float(correct)], self.base.device)
        return total_correct / len(records)

    def save(self, path: Path, metrics: dict[str, float]) -> Path:
        return save_meta_checkpoint(path, self.base, self.meta, self.cfg, {"step": self.step, **metrics},
                                    self.train_state())


def fail_injection(step: int) -> None:
    """Test hook: ``PERK_FAIL_AT_STEP=N`` kills this process once after step N (marker ``PERK_FAIL_MARKER``)."""
    at, marker = os.environ.get("PERK_FAIL_AT_STEP"), os.environ.get("PERK_FAIL_MARKER")
    if at and marker and step == int(at) and not Path(marker).exists():
        Path(marker).write_text(str(step))
        os._exit(1)


def run_meta_training(trainer: MetaTrainer, report: Reporter, scratch_dir: Path,
                      log: Callable[[str], None] = logger.info, metrics_file: Path | None = None) -> None:
    """Meta-train until the configured number of steps; report metrics every step and checkpoints at intervals."""
    cfg = trainer.cfg
    is_chief = trainer.strategy.rank == 0
    if is_chief:
        log(f"meta-training {cfg.model.name} on {len(trainer.train)} tasks: {trainer.total_steps} steps, "
            f"strategy={cfg.train.strategy} x{trainer.strategy.world_size}, resuming at step {trainer.step}")
    while trainer.step < trainer.total_steps:
        metrics = asdict(trainer.run_step())
        step = trainer.step
        last = step == trainer.total_steps
        checkpoint_due = last or step % cfg.train.checkpoint_every == 0
        if checkpoint_due or step % cfg.train.eval_every == 0:
            metrics["dev_accuracy"] = trainer.dev_accuracy()
        if is_chief and (step % cfg.train.log_every == 0 or last or "dev_accuracy" in metrics or step == 1):
            dev = f" | dev acc {metrics['dev_accuracy']:.3f}" if "dev_accuracy" in metrics else ""
            log(f"step {step}/{trainer.total_steps} | outer {metrics['outer_loss']:.4f} | inner "
                f"{metrics['inner_loss_first']:.3f}->{metrics['inner_loss_last']:.3f} | {metrics['tokens_per_s']:.0f} "
                f"tok/s | {metrics['step_seconds']:.2f} s/step | peak {metrics['peak_mib']:.0f} MiB{dev}")
        if is_chief and metrics_file is not None:
            with open(metrics_file, "a") as f:
                f.write(json.dumps(metrics) + "\n")
        checkpoint = None
        if checkpoint_due and is_chief:
            checkpoint = trainer.save(scratch_dir / f"step-{step:06d}", metrics)
        report(metrics, checkpoint)
        fail_injection(step)
