"""Frozen base weights sharded over ranks for the whole meta-step (``train.fsdp_full_shard``).

Every frozen linear, GPT-2 ``Conv1D`` and embedding weight of the base is split into ``world_size`` flat shards; a
rank keeps only its own. A weight is all-gathered just before an operation that reads it and dropped right after,
and this holds in backward and in double backward too: a linear map's vjp is again a linear map of the same weight,
so its backward is a custom autograd function that gathers the weight again (and whose own backward does the same).
No full weight is saved in the autograd graph, so per-rank frozen memory is one shard plus the weight being used,
whatever the depth of differentiation. The gathered weights are bit-identical to the originals, so the
meta-gradients equal the replicated run's up to the summation order of the matmul backward.

All ranks must run the same sequence of weight reads (a collective each): the same number of tasks, micro-batches per
task and generated tokens. ``check_lockstep`` verifies the first two before a meta-step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.autograd import Function
from transformers.pytorch_utils import Conv1D

from perk_ray.errors import InputError
from perk_ray.train.collectives import all_gather_flat, reduce_values


@dataclass
class GatherStats:
    """The largest gathered (transient) weight in bytes, and how many gathers ran."""

    peak: int = 0
    gathers: int = 0


class ShardedWeight:
    """One frozen weight as this rank's flat shard; ``full()`` all-gathers it (a collective)."""

    def __init__(self, weight: Tensor, rank: int, world: int, stats: GatherStats):
        self.shape, self.numel, self.stats = weight.shape, weight.numel(), stats
        per_rank = -(-self.numel // world)
        flat = torch.zeros(per_rank * world, dtype=weight.dtype, device=weight.device)
        flat[: self.numel] = weight.detach().reshape(-1)
        self.shard = flat[rank * per_rank : (rank + 1) * per_rank].clone()

    @property
    def nbytes(self) -> int:
        return self.shard.numel() * self.shard.element_size()

    def full(self) -> Tensor:
        out = all_gather_flat(self.shard)
        stats = self.stats
        stats.gathers += 1
        stats.peak = max(stats.peak, out.numel() * out.element_size())
        return out[: self.numel].view(self.shape)


class _MatmulWT(Function):
    """``x @ W^T`` with W gathered on use; its vjp is ``g @ W`` (``_MatmulW``)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: ShardedWeight) -> Tensor:
        ctx.weight = weight
        return nn.functional.linear(x, weight.full())

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _MatmulW.apply(grad, ctx.weight), None


class _MatmulW(Function):
    """``x @ W`` with W gathered on use; its vjp is ``g @ W^T`` (``_MatmulWT``)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: ShardedWeight) -> Tensor:
        ctx.weight = weight
        return torch.matmul(x, weight.full())

    @staticmethod
    def backward(ctx, grad: Tensor):
        return _MatmulWT.apply(grad, ctx.weight), None


class ShardedLinear(nn.Module):
    """A frozen ``nn.Linear`` whose weight lives in shards; the bias (small) stays replicated."""

    def __init__(self, linear: nn.Linear, weight: ShardedWeight):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.sharded = weight
        self.bias = linear.bias

    def forward(self, x: Tensor) -> Tensor:
        y = _MatmulWT.apply(x, self.sharded)
        return y if self.bias is None else y + self.bias


class ShardedConv1D(nn.Module):
    """A frozen GPT-2 ``Conv1D`` (``x @ W + b``, W of shape (in, out)) whose weight lives in shards."""

    def __init__(self, conv: Conv1D, weight: ShardedWeight):
        super().__init__()
        self.nx, self.nf = conv.nx, conv.nf
        self.sharded = weight
        self.bias = conv.bias

    def forward(self, x: Tensor) -> Tensor:
        return _MatmulW.apply(x, self.sharded) + self.bias


class ShardedEmbedding(nn.Module):
    """A frozen ``nn.Embedding`` whose table lives in shards (token ids are never differentiated)."""

    def __init__(self, embedding: nn.Embedding, weight: ShardedWeight):
        super().__init__()
        self.num_embeddings, self.embedding_dim = embedding.num_embeddings, embedding.embedding_dim
        self.padding_idx = embedding.padding_idx
        self.sharded = weight

    @property
    def weight(self) -> Tensor:
        """The gathered table (a collective), for code that reads it directly."""
        return self.sharded.full()

    def forward(self, ids: Tensor) -> Tensor:
        with torch.no_grad():
            return nn.functional.embedding(ids, self.sharded.full(), self.padding_idx)


SHARDED = {nn.Linear: ShardedLinear, Conv1D: ShardedConv1D, nn.Embedding: ShardedEmbedding}


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, attr, module)


def shard_frozen_weights(model: nn.Module) -> GatherStats:
    """Replace every ``nn.Linear``/``Conv1D``/``nn.Embedding`` of ``model`` but the LoRA ones by a sharded one (the
    base is frozen).

    Tied weights (e.g. embeddings and LM head) share one set of shards. Call on every rank, in the same order.
    """
    rank, world = dist.get_rank(), dist.get_world_size()
    stats = GatherStats()
    shared: dict[int, ShardedWeight] = {}
    targets = [(name, m) for name, m in model.named_modules()
               if type(m) in SHARDED and ".lora_" not in f".{name}"]
    for name, module in targets:
        key = id(module.weight)
        if key not in shared:
            shared[key] = ShardedWeight(module.weight, rank, world, stats)
        sharded = shared[key]
        _replace(model, name, SHARDED[type(module)](module, sharded))
    return stats


def sharded_bytes(model: nn.Module) -> int:
    """Bytes of this rank's shards (each set of tied shards once)."""
    seen = {id(m.sharded): m.sharded.nbytes for m in model.modules() if isinstance(m, tuple(SHARDED.values()))}
    return sum(seen.values())


def check_lockstep(values: list[int], what: str, device: torch.device) -> None:
    """Raise on every rank when ranks disagree on ``values`` (counts that fix the order of the weight gathers)."""
    low = reduce_values(values, device, dist.ReduceOp.MIN, torch.long)
    high = reduce_values(values, device, dist.ReduceOp.MAX, torch.long)
    if low != high:
        raise InputError(f"train.fsdp_full_shard=true needs every rank to run the same {what} in a meta-step "
                         f"(ranks differ: min {low}, max {high}); use contexts of equal length, "
                         "or inner.micro_batch_chunks >= the chunks of the longest context")
