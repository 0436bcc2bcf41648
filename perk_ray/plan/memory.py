"""Per-device memory of one PERK meta-step, from counts of the tensors autograd keeps.

The counts are elements kept per position (a token of a chunk, its ``doc_i:`` prefix included). They were fitted
(residual < 0.3 %) to saved-tensor-hook measurements of Qwen2 models with eager attention and LoRA on every
projection, in float32 and bfloat16, over 14 configurations varying hidden and intermediate size, heads, key/value
heads, layers, rank, chunk length, vocabulary, dropout and the weighting model. ``cluster/planner_validation.py``
checks them against the hooks (within 1 %) and the whole estimate against measured peaks. A kept inner step keeps
its forward and backward graph for every micro-batch of the context; a first-order step holds one micro-batch at
a time. With LoRA on fewer projections the activation counts are an upper bound (layers before the first LoRA
need no graph).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perk_ray.config import PerkConfig
from perk_ray.errors import ConfigError
from perk_ray.plan.arch import Architecture, lora_params, lora_targets

PREFIX_TOKENS = 8  # ``doc_{i}: `` before each chunk
QA_TOKENS = 64  # question prompt plus response of the outer loss
ITEMSIZE = {"float32": 4, "float64": 8, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Transient:
    """Memory in flight on top of the kept graph, fitted to measured peaks (cluster/planner_validation.py): backward
    temporaries of one layer of the micro-batch (per element of that layer's forward graph) and of its logits (per
    logits element of the forward graph), at the end of the kept steps and inside a first-order micro-batch; and
    temporaries of the outer backward through the inner optimiser (LoRA copies)."""

    layer_kept: float
    logits_kept: float
    layer_first_order: float
    logits_first_order: float
    lora: float


CP_REDUCE_LORA = 2.0  # cp: the flat inner gradient and its all-reduced copy, kept per kept step (not measured)
TRANSIENT = Transient(layer_kept=1.16, logits_kept=2.79, layer_first_order=0.04, logits_first_order=1.8, lora=1.75)


@dataclass(frozen=True)
class Counts:
    """Elements kept per position: per layer in units of hidden, intermediate, key/value width, heads x sequence,
    rank per LoRA projection and LoRA input width (dropout); outside the layers in units of hidden, vocabulary,
    weighting-model width and one; and per LoRA parameter (the differentiable inner optimiser step)."""

    hidden: float = 0.0
    intermediate: float = 0.0
    kv: float = 0.0
    attention: float = 0.0
    rank: float = 0.0
    dropout: float = 0.0
    head_hidden: float = 0.0
    vocab: float = 0.0
    weighting: float = 0.0
    constant: float = 0.0
    lora: float = 0.0


# (float32 counts, model-dtype counts): full-precision models keep everything in their dtype; half-precision ones
# keep norms, softmax, logits and the LoRA branch (peft casts adapters and their inputs to float32) in float32.
KEPT_STEP = {
    "full": (Counts(18.08, 12.01, 2.09, 3.01, 1.78, 1.15, 0.88, 1.99, 2.95, -139.1, 5.95), Counts()),
    "half": (Counts(17.12, 3.01, 2.01, 2.00, 1.78, 0.85, 0.72, 1.99, 3.00, -122.9, 5.95),
             Counts(3.96, 9.00, 0.09, 2.01, 0.0, 0.0, 0.16, 0.0, 0.0, -16.2)),
}
FORWARD = {
    "full": (Counts(7.98, 4.00, 0.09, 1.01, 1.00, 1.15, 0.13, 0.99, 0.0, -10.6), Counts()),
    "half": (Counts(8.01, 1.00, 0.0, 1.00, 1.00, 0.85, 0.0, 0.99, 0.0, 4.8),
             Counts(2.96, 3.00, 0.09, 1.01, 0.0, 0.0, 0.16, 0.0, 0.0, -15.4)),
}


@dataclass(frozen=True)
class Shape:
    """What one device processes: positions of its context chunks, of one micro-batch, and the sequence length."""

    positions: int
    micro_batch_positions: int
    seq: int


def device_shape(cfg: PerkConfig) -> Shape:
    """Chunks of the longest configured context (``data.lengths``); context parallelism splits them over ranks."""
    inner = cfg.inner
    if not cfg.data.lengths or min(cfg.data.lengths) <= 0:
        raise ConfigError(f"data.lengths={cfg.data.lengths}: context lengths must be positive token counts")
    if max(cfg.data.lengths) > inner.max_context_tokens:
        raise ConfigError(f"data.lengths={cfg.data.lengths}: over inner.max_context_tokens={inner.max_context_tokens}")
    chunks = math.ceil(max(cfg.data.lengths) / inner.chunk_tokens)
    if cfg.train.strategy == "cp":
        chunks = math.ceil(chunks / cfg.train.num_workers)
    seq = inner.chunk_tokens + PREFIX_TOKENS
    return Shape(chunks * seq, min(chunks, inner.micro_batch_chunks) * seq, seq)


@dataclass(frozen=True)
class PerPosition:
    """Bytes per position: in the decoder layers (all of them), outside them, and vocabulary-sized."""

    layers: float
    head: float
    logits: float

    @property
    def total(self) -> float:
        return self.layers + self.head + self.logits


def per_position(counts: tuple[Counts, Counts], arch: Architecture, cfg: PerkConfig, seq: int) -> PerPosition:
    """Bytes that ``counts`` (float32 part, model-dtype part) amount to per position."""
    targets = lora_targets(arch, cfg.lora)
    dropout_in = sum(a for a, _ in targets.values()) if cfg.lora.dropout > 0 else 0
    weighting = cfg.inner.weighting_hidden if cfg.inner.weighting == "mlp" else 0
    itemsize = ITEMSIZE[cfg.model.dtype]
    layers = head = logits = 0.0
    for c, size in zip(counts, (4 if itemsize == 2 else itemsize, itemsize)):
        layers += size * arch.num_layers * (
            c.hidden * arch.hidden_size + c.intermediate * arch.intermediate_size + c.kv * arch.kv_dim
            + c.attention * arch.num_heads * seq + c.rank * cfg.lora.rank * len(targets) + c.dropout * dropout_in)
        head += size * (c.head_hidden * arch.hidden_size + c.weighting * weighting + c.constant)
        logits += size * c.vocab * arch.vocab_size
    return PerPosition(layers, head, logits)


def _counts(table: dict, dtype: str) -> tuple[Counts, Counts]:
    return table["half" if ITEMSIZE[dtype] == 2 else "full"]


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per device. ``static`` lives across meta-steps; ``meta_step`` is the peak above it during one step,
    reached at the end of the last kept step (or, with T=0, inside a first-order micro-batch)."""

    weights: int  # frozen base (plus its FSDP shard) and the module's own LoRA tensors
    meta_state: int  # meta-parameters, their gradients and the outer AdamW moments
    kept_activations: int  # T kept steps: forward and backward graphs of every micro-batch
    kept_optimizer: int  # T kept steps: the differentiable inner optimiser update of the LoRA tensors
    micro_batch: int  # in flight: backward temporaries (and with T=0 the forward graph) of one micro-batch
    logits: int  # vocabulary-sized tensors of the kept steps and of the micro-batch in flight
    inner_state: int  # fast weights, inner moments, first-order updates, outer-backward temporaries, answer, cache

    @property
    def static(self) -> int:
        return self.weights + self.meta_state

    @property
    def meta_step(self) -> int:
        return self.kept_activations + self.kept_optimizer + self.micro_batch + self.logits + self.inner_state

    @property
    def total(self) -> int:
        return self.static + self.meta_step

    def rows(self) -> list[tuple[str, int]]:
        return [("frozen weights", self.weights), ("meta-params + AdamW", self.meta_state),
                ("kept-step activations", self.kept_activations), ("kept-step inner optimiser", self.kept_optimizer),
                ("micro-batch in flight", self.micro_batch), ("logits", self.logits),
                ("inner state", self.inner_state), ("total", self.total)]


def _lora_item(dtype: str) -> int:
    return 4 if ITEMSIZE[dtype] == 2 else ITEMSIZE[dtype]  # peft keeps a half model's adapters in float32


def kept_step_bytes(cfg: PerkConfig, arch: Architecture) -> tuple[float, float, float]:
    """What one kept inner step adds to the graph on one device: (activations, logits, inner optimiser) bytes."""
    shape = device_shape(cfg)
    counts = _counts(KEPT_STEP, cfg.model.dtype)
    kept = per_position(counts, arch, cfg, shape.seq)
    lora_copies = counts[0].lora + (CP_REDUCE_LORA if cfg.train.strategy == "cp" else 0.0)
    lora_bytes = lora_params(arch, cfg.lora) * _lora_item(cfg.model.dtype)
    return shape.positions * (kept.layers + kept.head), shape.positions * kept.logits, lora_copies * lora_bytes


def estimate_memory(cfg: PerkConfig, arch: Architecture, transient: Transient = TRANSIENT) -> MemoryEstimate:
    """Peak bytes per device of meta-training with ``cfg`` (its strategy and world size) on ``arch``."""
    inner, dtype = cfg.inner, cfg.model.dtype
    shape = device_shape(cfg)
    n_lora = lora_params(arch, cfg.lora)
    lora_bytes = n_lora * _lora_item(dtype)
    weighting = (arch.hidden_size + 2) * inner.weighting_hidden + 1 if inner.weighting == "mlp" else 0
    rates = 2 * len(lora_targets(arch, cfg.lora)) * arch.num_layers * inner.steps
    frozen = arch.num_params() * ITEMSIZE[dtype]
    if cfg.train.strategy == "fsdp" and cfg.train.fsdp_full_shard:  # the shard, plus one weight gathered at a time
        frozen = frozen // cfg.train.num_workers + arch.vocab_size * arch.hidden_size * ITEMSIZE[dtype]
    elif cfg.train.strategy == "fsdp":  # gathered for the meta-step, plus the shard kept at rest
        frozen += frozen // cfg.train.num_workers

    fwd = per_position(_counts(FORWARD, dtype), arch, cfg, shape.seq)
    answer = QA_TOKENS * per_position(_counts(FORWARD, dtype), arch, cfg, QA_TOKENS).total
    mb = shape.micro_batch_positions
    layer = mb * fwd.layers / arch.num_layers
    if inner.truncation:  # the peak: the end of the last kept step, as the outer backward starts
        in_flight = layer * transient.layer_kept
        in_flight_logits = mb * fwd.logits * transient.logits_kept
    else:  # the peak: inside a first-order micro-batch, whose forward graph is in flight too
        in_flight = layer * transient.layer_first_order + mb * (fwd.layers + fwd.head)
        in_flight_logits = mb * fwd.logits * (1 + transient.logits_first_order)
    activations, logits, optimizer = kept_step_bytes(cfg, arch)
    steps = inner.truncation
    # fast weights and two inner moments, one saved update per first-order step, outer-backward temporaries,
    # the answer loss's graph and the weighting model's cached base hidden states
    state = (3 + inner.steps - steps + transient.lora) * lora_bytes + answer
    if inner.weighting == "mlp":
        state += shape.positions * arch.hidden_size * ITEMSIZE[dtype]
    return MemoryEstimate(
        weights=int(frozen + lora_bytes),
        meta_state=int(4 * (n_lora + weighting + rates) * _lora_item(dtype)),
        kept_activations=int(steps * activations),
        kept_optimizer=int(steps * optimizer),
        micro_batch=int(in_flight),
        logits=int(steps * logits + in_flight_logits),
        inner_state=int(state),
    )
