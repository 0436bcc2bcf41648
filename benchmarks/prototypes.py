"""Variants of the inner loop's code, applied by monkeypatching, to time against the current code in one process.

Each variant is a context manager that swaps one function and restores it on exit, so
``benchmarks/inner_loop_costs.py`` can time the current code and the variant interleaved. Variants marked
``(before)`` are the former code of a speed-up that has been applied to perk_ray (a speed-up below 1 is what the
change bought); ``(proposal)`` variants are not applied yet, written out in full so they can be copied as is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


def _inner_gradients_no_cache(base, params, weighting, chunks, micro_batch, total_tokens, keep_graph,
                              hidden_cache=None):
    return _inner_gradients(base, params, weighting, chunks, micro_batch, total_tokens, keep_graph, None)


def recompute_base_hidden():
    """What the code did before commit 2a0b0d4 (the hidden-state cache): ``base_last_hidden`` per step and
    micro-batch."""
    return patched(inner_loop, "inner_gradients", _inner_gradients_no_cache)


# --- 2. Before the flat cross-entropy (now in inner_loop.chunk_loss_sum): sliced, transposed logits -------------

def chunk_loss_sum_sliced(base: BaseModel, params: dict[str, Tensor], chunks: ChunkBatch, weighting: nn.Module | None,
                          weights_grad: bool, hidden: Tensor | None = None) -> Tensor:
    """The former ``inner_loop.chunk_loss_sum``: ``logits[:, :-1]`` (a full-size zero-filled gradient and a copy in
    backward) and the CE on ``logits.transpose(1, 2)`` (made contiguous by the 2-D NLL kernel: another full copy).
    Same loss as today's (a token sum, weights from the hidden state at the predicted token)."""
    logits = inner_loop._float_logits(model_mod.lora_forward(base, params, chunks.input_ids,
                                                             chunks.attention_mask).logits[:, :-1])
    targets = chunks.input_ids[:, 1:]
    mask = chunks.loss_mask[:, :-1].to(logits.dtype)
    ce = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    if weighting is None:
        weights = mask
    else:
        hidden = inner_loop.base_last_hidden(base, chunks) if hidden is None else hidden
        with torch.set_grad_enabled(weights_grad):
            weights = weighting(hidden[:, 1:], mask).to(ce.dtype)
    return (weights * ce).sum()


def sliced_cross_entropy():
    return patched(inner_loop, "chunk_loss_sum", chunk_loss_sum_sliced)


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


# --- 4. Before tie_weights=False (now in model.lora_forward): functional_call's tied-weight bookkeeping ----------

def lora_forward_tied(base: BaseModel, params: dict[str, Tensor], input_ids: Tensor,
                      attention_mask: Tensor | None = None, **kwargs):
    """The former ``model.lora_forward``: ``functional_call`` with its default ``tie_weights=True``."""
    return torch.func.functional_call(
        base.model, params, args=(), kwargs={"input_ids": input_ids, "attention_mask": attention_mask, **kwargs},
        strict=False,
    )


def tied_functional_call():
    import perk_ray.generation as generation
    import perk_ray.meta as meta

    stack = contextlib.ExitStack()
    for module in (model_mod, inner_loop, meta, generation):
        stack.enter_context(patched(module, "lora_forward", lora_forward_tied))
    return stack


# --- 5. Before model.base_forward (zero LoRA B): the base hidden states through peft's disable_adapter() ----------

@torch.no_grad()
def base_last_hidden_disable_adapter(base: BaseModel, chunks: ChunkBatch) -> Tensor:
    """The former ``inner_loop.base_last_hidden``. peft's ``disable_adapter`` calls ``get_model_status``, which walks
    all named modules (about 6,200 recursive ``named_modules`` calls, 1.9 ms CPU per use for the tiny model), then
    toggles every LoRA layer off and on."""
    with base.model.disable_adapter():
        out = base.model(input_ids=chunks.input_ids, attention_mask=chunks.attention_mask, output_hidden_states=True)
    return out.hidden_states[-1]


def disable_adapter_hidden():
    return patched(inner_loop, "base_last_hidden", base_last_hidden_disable_adapter)


def combined_before():
    """The three applied changes undone together: sliced CE, tied functional_call, disable_adapter."""
    stack = contextlib.ExitStack()
    for make in (sliced_cross_entropy, tied_functional_call, disable_adapter_hidden):
        stack.enter_context(make())
    return stack


PROTOTYPES = {
    "recompute_hidden (before 2a0b0d4)": recompute_base_hidden,
    "sliced_ce (before)": sliced_cross_entropy,
    "tied_functional_call (before)": tied_functional_call,
    "disable_adapter_hidden (before)": disable_adapter_hidden,
    "combined before (sliced_ce + tied + disable_adapter)": combined_before,
    "lean_lora (proposal)": lean_lora,
}
