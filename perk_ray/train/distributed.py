"""Distribution strategies of the meta-step: ddp, fsdp (FSDP2 over decoder layers) and context parallelism.

All strategies replicate the meta-parameters and sum their gradients with one flat all-reduce (DDP's hooks do not
fire on ``autograd.grad``). ``fsdp`` additionally shards the frozen base weights at rest (FSDP2, gathered
for the whole step), or with ``train.fsdp_full_shard`` during the step as well (``frozen_shards``); ``cp`` splits
each context's chunks over the ranks and sums the inner gradients with a differentiable all-reduce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from perk_ray.inner_loop import GradReduce
from perk_ray.meta import MetaParams, PreparedTask
from perk_ray.model import BaseModel
from perk_ray.train.collectives import all_reduce, differentiable_sum
from perk_ray.train.frozen_shards import GatherStats, check_lockstep, shard_frozen_weights, sharded_bytes

T = TypeVar("T")

def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def all_reduce_meta_grads(meta: MetaParams) -> None:
    """Sum the meta-gradients over ranks in one flat buffer."""
    if _world()[1] == 1:
        return
    params = [p for p in meta.parameters() if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = all_reduce(torch.cat([g.reshape(-1) for g in grads]), grads[0].device)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def frozen_param_bytes(base: BaseModel) -> int:
    """Bytes of frozen base weights resident on this rank (local shards for FSDP2 DTensors and full sharding); the
    module's LoRA tensors are not counted (the fast weights are swapped in by functional calls)."""
    total = sharded_bytes(base.model)
    for name, p in base.model.named_parameters():
        local = p.to_local() if hasattr(p, "to_local") else p
        if ".lora_" not in name:
            total += local.numel() * local.element_size()
    return total


def decoder_layers(base: BaseModel) -> Sequence[torch.nn.Module]:
    inner = base.model.get_base_model()
    for path in ("model.layers", "transformer.h"):
        module = inner
        for part in path.split("."):
            module = getattr(module, part, None)
        if module is not None:
            return list(module)
    raise ValueError(f"train.strategy=fsdp: no decoder layer list found in {type(inner).__name__}")


@dataclass
class Strategy:
    """How a meta-step is distributed over ``world_size`` ranks."""

    name: str
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")  # the model's: where the strategy's collectives run
    layers: Sequence[torch.nn.Module] = ()
    gathers: GatherStats | None = None  # full sharding: what the per-use weight gathers measured

    @classmethod
    def create(cls, name: str, base: BaseModel, full_shard: bool = False) -> Strategy:
        rank, world = _world()
        strategy = cls(name, rank, world, base.device)
        if name == "fsdp" and world > 1:
            if full_shard:
                strategy.gathers = shard_frozen_weights(base.model)
            else:
                strategy.layers = _shard_layers(base)
        return strategy

    def my_tasks(self, batch: Sequence[T]) -> list[T]:
        """The records of a global batch this rank meta-trains on (all of them under context parallelism)."""
        if self.name == "cp":
            return list(batch)
        return [r for j, r in enumerate(batch) if j % self.world_size == self.rank]

    def my_eval_records(self, records: Sequence[T]) -> list[T]:
        """The records this rank evaluates: all of them under full sharding (its gathers run in lockstep)."""
        return list(records) if self.gathers is not None else list(records[self.rank :: self.world_size])

    def check_lockstep(self, micro_batches: list[int]) -> None:
        """Full sharding: every rank must run as many tasks and micro-batches (each weight read is a collective)."""
        if self.gathers is not None:
            check_lockstep([len(micro_batches), *micro_batches], "number of tasks and micro-batches per task",
                           self.device)

    def shard_task(self, task: PreparedTask) -> tuple[PreparedTask, int]:
        """This rank's chunks of a task and the context's loss tokens over all ranks (the inner loss divides by it)."""
        if self.name != "cp" or self.world_size == 1:
            return task, task.chunks.num_loss_tokens
        return PreparedTask(task.chunks.shard(self.rank, self.world_size), task.qa), task.chunks.num_loss_tokens

    @property
    def grad_reduce(self) -> GradReduce | None:
        return differentiable_sum if self.name == "cp" and self.world_size > 1 else None

    def loss_scale(self, global_batch: int) -> int:
        """Divisor of each task loss: replicated answer losses under cp are counted once over all ranks."""
        return global_batch * (self.world_size if self.name == "cp" else 1)

    def before_step(self) -> None:
        """FSDP2: gather the frozen layers (a collective every rank joins) before any rank-local compute."""
        for layer in self.layers:
            layer.unshard()

    def after_step(self) -> None:
        """FSDP2: back to sharded-at-rest after the optimiser step."""
        for layer in self.layers:
            layer.reshard()


def _shard_layers(base: BaseModel) -> list[torch.nn.Module]:
    """FSDP2 per decoder layer, the recipe that is exact: LoRA tensors ignored (they are the fast weights)."""
    from torch.distributed.fsdp import fully_shard

    layers = decoder_layers(base)
    for layer in layers:
        lora = {p for n, p in layer.named_parameters() if ".lora_" in n}
        fully_shard(layer, reshard_after_forward=False, ignored_params=lora)
        layer.set_reshard_after_backward(False)
    return layers
