"""The inner loop: K functional optimisation steps of the LoRA tensors on the weighted causal-LM loss of a context.

Steps inside the truncation window (the last T) keep their graph (``create_graph=True``), so the outer loss
backpropagates through them to the LoRA initialisation, the learned rates and the weighting model. Earlier steps
are first-order: their gradients (and optimiser moments) are constants, while the update itself stays
differentiable in the parameters and the learned rate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from perk_ray.chunking import ChunkBatch
from perk_ray.config import InnerConfig
from perk_ray.model import BaseModel, base_forward, lora_forward

GradReduce = Callable[[list[Tensor]], list[Tensor]]
# sqrt(x + _TINY) instead of sqrt(x): finite derivative at x = 0 (LoRA B starts at zero, so A's first gradient is 0)
_TINY = 1e-20


@dataclass
class InnerResult:
    """Adapted LoRA tensors and the inner loss measured at each step (before that step's update)."""

    params: dict[str, Tensor]
    losses: list[float] = field(default_factory=list)


def _float_logits(logits: Tensor) -> Tensor:
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


@torch.no_grad()
def base_last_hidden(base: BaseModel, chunks: ChunkBatch) -> Tensor:
    """Last hidden states of the frozen base (LoRA off): the input of the token weighting model."""
    return base_forward(base, chunks.input_ids, chunks.attention_mask, output_hidden_states=True).hidden_states[-1]


def next_token_hidden(hidden: Tensor) -> Tensor:
    """Align hidden states with the loss positions: position t's loss predicts token t+1, so its weight comes from
    the hidden state *at* t+1 (the weighting model sees the token it weights). The last position predicts nothing."""
    return nn.functional.pad(hidden[:, 1:], (0, 0, 0, 1))


def chunk_loss_sum(
    base: BaseModel, params: dict[str, Tensor], chunks: ChunkBatch, weighting: nn.Module | None, weights_grad: bool,
    hidden: Tensor | None = None,
) -> Tensor:
    """Sum over the chunks' context tokens of the (weighted) next-token CE.

    The weights come from the base model's last hidden states (``hidden``, computed here when not given) at the
    predicted token, so they do not depend on the LoRA tensors. The targets are shifted rather than the logits, and
    the CE runs on (tokens, vocab) rows: slicing or transposing the logits costs a full-size copy in forward and in
    backward. The last position predicts nothing: its ``loss_mask`` is 0.
    """
    logits = _float_logits(lora_forward(base, params, chunks.input_ids, chunks.attention_mask).logits)
    rows, length, vocab = logits.shape
    targets = nn.functional.pad(chunks.input_ids[:, 1:], (0, 1))
    mask = chunks.loss_mask.to(logits.dtype)
    ce = nn.functional.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), reduction="none")
    ce = ce.view(rows, length)
    if weighting is None:
        weights = mask
    else:
        hidden = base_last_hidden(base, chunks) if hidden is None else hidden
        with torch.set_grad_enabled(weights_grad):
            weights = weighting(next_token_hidden(hidden), mask).to(ce.dtype)
    return (weights * ce).sum()


def inner_gradients(
    base: BaseModel,
    params: dict[str, Tensor],
    weighting: nn.Module | None,
    chunks: ChunkBatch,
    micro_batch: int,
    total_tokens: int,
    keep_graph: bool,
    hidden_cache: list[Tensor] | None = None,
) -> tuple[list[Tensor], Tensor]:
    """Gradient of the inner loss (a mean over all ``total_tokens`` context tokens of the context, every token alike)
    accumulated over micro-batches of chunks.

    ``hidden_cache`` holds the base hidden states per micro-batch for the weighting model: filled on the first
    step, reused by the later ones (the base is frozen, so they do not change).
    """
    names = list(params)
    inputs = params if keep_graph else {n: p.detach().requires_grad_(True) for n, p in params.items()}
    grads: list[Tensor] | None = None
    loss_total = torch.zeros((), dtype=torch.float64)
    for index, part in enumerate(chunks.micro_batches(micro_batch)):
        hidden = None
        if weighting is not None and hidden_cache is not None:
            if index == len(hidden_cache):
                hidden_cache.append(base_last_hidden(base, part))
            hidden = hidden_cache[index]
        with torch.enable_grad():
            loss = chunk_loss_sum(base, inputs, part, weighting, keep_graph, hidden) / total_tokens
            part_grads = torch.autograd.grad(loss, [inputs[n] for n in names], create_graph=keep_graph)
        if not keep_graph:
            part_grads = [g.detach() for g in part_grads]
        grads = list(part_grads) if grads is None else [a + b for a, b in zip(grads, part_grads)]
        loss_total = loss_total + loss.detach().double().cpu()
    if grads is None:  # a context-parallel rank with no chunks: zero gradients, in the graph exactly when the other
        # ranks' are (the backward of their differentiable all-reduce is a collective this rank must join too)
        grads = [inputs[n] * 0 if keep_graph else torch.zeros_like(inputs[n]) for n in names]
    return grads, loss_total


def clip_grad_norm(grads: list[Tensor], max_norm: float) -> list[Tensor]:
    """Differentiable global-norm clipping."""
    norm = torch.sqrt(sum((g * g).sum() for g in grads) + _TINY)
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    return [g * scale for g in grads]


class InnerOptimizer:
    """Differentiable SGD / AdamW (decoupled weight decay) over a dict of tensors."""

    def __init__(self, cfg: InnerConfig, params: dict[str, Tensor]):
        self.cfg = cfg
        self.m = {n: torch.zeros_like(p) for n, p in params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in params.items()}

    def step(self, params: dict[str, Tensor], grads: list[Tensor], lrs: dict[str, Tensor], k: int) -> dict[str, Tensor]:
        cfg = self.cfg
        new = {}
        for (name, p), g in zip(params.items(), grads):
            lr = lrs[name][k]
            if cfg.optimizer == "sgd":
                update = g
            else:
                b1, b2 = cfg.betas
                self.m[name] = b1 * self.m[name] + (1 - b1) * g
                self.v[name] = b2 * self.v[name] + (1 - b2) * g * g
                m_hat = self.m[name] / (1 - b1 ** (k + 1))
                v_hat = self.v[name] / (1 - b2 ** (k + 1))
                update = m_hat / (torch.sqrt(v_hat + _TINY) + cfg.eps)
            if cfg.weight_decay:
                update = update + cfg.weight_decay * p
            new[name] = p - lr * update
        return new


def adapt(
    base: BaseModel,
    init: dict[str, Tensor],
    lrs: dict[str, Tensor],
    weighting: nn.Module | None,
    chunks: ChunkBatch,
    cfg: InnerConfig,
    *,
    create_graph: bool,
    grad_reduce: GradReduce | None = None,
    total_tokens: int | None = None,
    micro_batch_chunks: int | None = None,
) -> InnerResult:
    """Run the K inner steps from ``init``; ``create_graph`` keeps the last T steps differentiable (meta-training).

    ``micro_batch_chunks`` overrides ``cfg.micro_batch_chunks`` (encoding uses ``cfg.encode_micro_batch_chunks``).

    With context parallelism each rank passes its own chunks, ``total_tokens`` (the context's loss tokens over all
    ranks) and a ``grad_reduce`` that sums the inner gradients over ranks differentiably.
    """
    if not create_graph:
        init = {n: p.detach() for n, p in init.items()}
        lrs = {n: lr.detach() for n, lr in lrs.items()}
    params = dict(init)
    optimizer = InnerOptimizer(cfg, params)
    total = total_tokens or chunks.num_loss_tokens
    losses: list[float] = []
    hidden_cache: list[Tensor] = []
    micro_batch = micro_batch_chunks or cfg.micro_batch_chunks
    for k in range(cfg.steps):
        keep = create_graph and k >= cfg.steps - cfg.truncation
        grads, loss = inner_gradients(base, params, weighting, chunks, micro_batch, total, keep,
                                      hidden_cache)
        if grad_reduce is not None:
            *grads, loss = grad_reduce([*grads, loss.to(grads[0].device, grads[0].dtype)])
        losses.append(float(loss))
        if cfg.grad_clip is not None:
            grads = clip_grad_norm(grads, cfg.grad_clip)
        with torch.set_grad_enabled(create_graph):
            params = optimizer.step(params, grads, lrs, k)
    return InnerResult(params, losses)
