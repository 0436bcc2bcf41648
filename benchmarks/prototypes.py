"""Scratch prototypes of proposed speed changes to perk_ray, applied by monkeypatching (perk_ray/ is not edited).

Each prototype is a context manager that swaps one function for the proposed version and restores it on exit, so
``benchmarks/inner_loop_costs.py`` can time the current code and the proposal in the same process, interleaved.
The proposed code is written out in full here so it can be copied into perk_ray as is.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from peft.tuners.lora import layer as peft_lora
from torch import Tensor, nn

import perk_ray.inner_loop as inner_loop
import perk_ray.model as model_mod
from perk_ray.chunking import ChunkBatch
from perk_ray.model import BaseModel


@contextlib.contextmanager
def patched(module, name: str, value) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


# --- 1. Before commit 2a0b0d4: the weighting model's input recomputed by a base forward on every step and micro-batch

_inner_gradients = inner_loop.inner_gradients


def _inner_gradients_no_cache(base, params, weighting, chunks, micro_batch, total_chunks, keep_graph,
                              hidden_cache=None):
    return _inner_gradients(base, params, weighting, chunks, micro_batch, total_chunks, keep_graph, None)


def recompute_base_hidden():
    """What the code did before commit 2a0b0d4 (the hidden-state cache): ``base_last_hidden`` per step and
    micro-batch."""
    return patched(inner_loop, "inner_gradients", _inner_gradients_no_cache)


# --- 2. The inner loss without the logits slice and the transpose copy ------------------------------------------

def chunk_loss_sum_flat(base: BaseModel, params: dict[str, Tensor], chunks: ChunkBatch, weighting: nn.Module | None,
                        weights_grad: bool, hidden: Tensor | None = None) -> Tensor:
    """Same value as ``inner_loop.chunk_loss_sum``, computed on the full-length logits.

    The targets are shifted instead of the logits (``logits[:, :-1]`` costs a full-size zero-filled gradient and a
    copy in backward), and the cross-entropy runs on (tokens, vocab) rows instead of ``logits.transpose(1, 2)``
    (which the 2-D NLL kernel makes contiguous: another full copy, forward and backward). The last position has
    ``loss_mask == 0`` by construction (it predicts nothing), so its weight is 0 and the sums are unchanged.
    """
    logits = inner_loop._float_logits(model_mod.lora_forward(base, params, chunks.input_ids,
                                                             chunks.attention_mask).logits)
    rows, length, vocab = logits.shape
    targets = F.pad(chunks.input_ids[:, 1:], (0, 1), value=0)
    mask = chunks.loss_mask.to(logits.dtype)
    ce = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="none").view(rows, length)
    if weighting is None:
        weights = mask
    else:
        hidden = inner_loop.base_last_hidden(base, chunks) if hidden is None else hidden
        with torch.set_grad_enabled(weights_grad):
            weights = weighting(hidden, mask).to(ce.dtype)
    return ((weights * ce).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)).sum()


def flat_cross_entropy():
    return patched(inner_loop, "chunk_loss_sum", chunk_loss_sum_flat)


# --- 3. A lean LoRA forward: scaling folded into B, none of peft's per-call bookkeeping -------------------------

_peft_forward = peft_lora.Linear.forward


def lean_lora_forward(self, x: Tensor, *args, **kwargs) -> Tensor:
    """peft's vanilla-LoRA ``Linear.forward`` without its bookkeeping, scaling applied to B (rank x out) rather
    than to the (tokens x out) output: one activation-sized multiply fewer per layer, forward and backward.

    Falls back to peft for anything else (merged or disabled adapters, dropout, variants, mixed batches).
    """
    if args or kwargs or self.disable_adapters or self.merged:
        return _peft_forward(self, x, *args, **kwargs)
    result = self.base_layer(x)
    for name in self.active_adapters:
        if name not in self.lora_A:
            continue
        if name in self.lora_variant or not isinstance(self.lora_dropout[name], nn.Identity):
            return _peft_forward(self, x, *args, **kwargs)
        a, b = self.lora_A[name].weight, self.lora_B[name].weight
        result = result + F.linear(F.linear(x.to(a.dtype), a), b * self.scaling[name]).to(result.dtype)
    return result


def lean_lora():
    return patched(peft_lora.Linear, "forward", lean_lora_forward)


# --- 4. functional_call without the tied-weight bookkeeping (only LoRA tensors are swapped in) ------------------

def lora_forward_untied(base: BaseModel, params: dict[str, Tensor], input_ids: Tensor,
                        attention_mask: Tensor | None = None, **kwargs):
    """``model.lora_forward`` with ``tie_weights=False``: the swapped LoRA tensors are never tied to anything."""
    return torch.func.functional_call(
        base.model, params, args=(), kwargs={"input_ids": input_ids, "attention_mask": attention_mask, **kwargs},
        strict=False, tie_weights=False,
    )


def untied_functional_call():
    stack = contextlib.ExitStack()
    stack.enter_context(patched(model_mod, "lora_forward", lora_forward_untied))
    stack.enter_context(patched(inner_loop, "lora_forward", lora_forward_untied))
    import perk_ray.generation as generation
    import perk_ray.meta as meta

    stack.enter_context(patched(meta, "lora_forward", lora_forward_untied))
    stack.enter_context(patched(generation, "lora_forward", lora_forward_untied))
    return stack


# --- 5. The base hidden states without peft's disable_adapter() (it walks every module twice per call) ------------

_zero_b: dict[int, dict[str, Tensor]] = {}


@torch.no_grad()
def base_last_hidden_zero_b(base: BaseModel, chunks: ChunkBatch) -> Tensor:
    """``inner_loop.base_last_hidden`` without ``disable_adapter()``: a functional call with every LoRA B set to
    zero. The LoRA term is then exactly 0 (x A^T 0^T * s), so the output is bit-identical to the base model's, and
    no module is touched. peft's ``disable_adapter`` calls ``get_model_status``, which walks all named modules
    (about 6,200 recursive ``named_modules`` calls, 1.9 ms CPU per use for the tiny model), then toggles every LoRA layer off and on.
    """
    zeros = _zero_b.get(id(base))
    if zeros is None:
        named = dict(base.model.named_parameters())
        zeros = _zero_b[id(base)] = {n: torch.zeros_like(named[n]) for n in base.lora_names if ".lora_B." in n}
    out = model_mod.lora_forward(base, zeros, chunks.input_ids, chunks.attention_mask, output_hidden_states=True)
    return out.hidden_states[-1]


def zero_b_base_hidden():
    return patched(inner_loop, "base_last_hidden", base_last_hidden_zero_b)


def combined():
    """Prototypes 2 to 5 together (on top of the hidden-state cache, committed in 2a0b0d4)."""
    stack = contextlib.ExitStack()
    for make in (flat_cross_entropy, lean_lora, untied_functional_call, zero_b_base_hidden):
        stack.enter_context(make())
    return stack


PROTOTYPES = {
    "recompute_hidden (before 2a0b0d4)": recompute_base_hidden,
    "flat_ce": flat_cross_entropy,
    "lean_lora": lean_lora,
    "untied_functional_call": untied_functional_call,
    "zero_b_base_hidden": zero_b_base_hidden,
    "combined (flat_ce + lean_lora + untied + zero_b)": combined,
}
