"""Every collective perk-ray's training issues, in one place, on the device of the model.

NCCL (Ray Train with ``train.use_gpu=true``) refuses CPU tensors, so values computed on the host (step metrics,
counts) are placed on the model's device before they are reduced; gradients and weight shards already live there.
Without a process group every function returns its input as a one-rank reduction would.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import Tensor


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce(tensor: Tensor, device: torch.device, op: dist.ReduceOp = dist.ReduceOp.SUM) -> Tensor:
    """``tensor`` reduced over ranks, on ``device`` (in place when it is already there)."""
    tensor = tensor.to(device)
    if initialized():
        dist.all_reduce(tensor, op=op)
    return tensor


def reduce_values(values: Sequence[float], device: torch.device, op: dist.ReduceOp = dist.ReduceOp.SUM,
                  dtype: torch.dtype = torch.float64) -> list:
    """Host numbers reduced over ranks (through a ``dtype`` tensor on ``device``)."""
    if not initialized():
        return list(values)
    return all_reduce(torch.tensor(list(values), dtype=dtype), device, op).tolist()


def all_gather_flat(shard: Tensor) -> Tensor:
    """The concatenation of every rank's equally sized ``shard`` (on the shard's device)."""
    out = torch.empty(shard.numel() * dist.get_world_size(), dtype=shard.dtype, device=shard.device)
    dist.all_gather_into_tensor(out, shard)
    return out


def differentiable_sum(tensors: list[Tensor]) -> list[Tensor]:
    """Sum tensors over ranks, differentiably (context parallelism's inner-gradient reduction): its backward is
    again an all-reduce, so every rank must put tensors that require grad exactly when the others do."""
    from torch.distributed.nn.functional import all_reduce as differentiable_all_reduce

    flat = differentiable_all_reduce(torch.cat([t.reshape(-1) for t in tensors]))
    out, offset = [], 0
    for t in tensors:
        out.append(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
    return out
