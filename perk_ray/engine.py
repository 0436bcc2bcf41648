"""The inference API: load a meta-checkpoint, encode contexts into memories, answer questions, export memories."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from perk_ray.checkpoint import export_memory, load_meta_params, read_checkpoint_info
from perk_ray.chunking import ChunkBatch, chunk_context
from perk_ray.config import PerkConfig, apply_overrides, build_config
from perk_ray.errors import InputError
from perk_ray.generation import greedy_generate
from perk_ray.inner_loop import adapt, chunk_loss_sum
from perk_ray.meta import MetaParams
from perk_ray.model import BaseModel, load_base_model
from perk_ray.prompts import extract_answer, question_prompt


@dataclass
class Memory:
    """An encoded context: the adapted LoRA tensors and what encoding measured."""

    params: dict[str, Tensor]
    num_chunks: int
    num_tokens: int
    inner_losses: list[float] = field(default_factory=list)
    encode_seconds: float = 0.0

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.params.values())

    def to(self, device: torch.device | str) -> Memory:
        return Memory({n: t.to(device) for n, t in self.params.items()}, self.num_chunks, self.num_tokens,
                      list(self.inner_losses), self.encode_seconds)


class PerkEngine:
    """A frozen base model plus meta-parameters: ``encode`` a context, then ``answer`` questions from the memory."""

    def __init__(self, cfg: PerkConfig, base: BaseModel, meta: MetaParams):
        self.cfg = cfg
        self.base = base
        self.meta = meta
        base.model.eval()

    @classmethod
    def from_config(cls, cfg: PerkConfig, device: str | torch.device = "cpu") -> PerkEngine:
        """An engine with the un-meta-trained initialisation (peft's LoRA init, the configured inner rate)."""
        base = load_base_model(cfg.model, cfg.lora, device)
        return cls(cfg, base, MetaParams.from_base(base, cfg))

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        overrides: Sequence[str] = ()) -> PerkEngine:
        """Load a meta-checkpoint; ``overrides`` may change inference fields (e.g. ``inner.micro_batch_chunks=8``)."""
        cfg = read_checkpoint_info(path).config
        if overrides:
            cfg = build_config(apply_overrides(cfg.to_dict(), list(overrides)))
        engine = cls.from_config(cfg, device)
        load_meta_params(path, engine.base, engine.meta)
        return engine

    def _chunks(self, context: str | Sequence[str]) -> ChunkBatch:
        """The context's chunks as ``encode`` trains on them, on the model's device."""
        return chunk_context(self.base.tokenizer, context, self.cfg.inner).to(self.base.device)

    def encode(self, context: str | Sequence[str]) -> Memory:
        """Encode a context into a memory with K first-order inner steps (no graph kept, micro-batched)."""
        start = time.perf_counter()
        inner = self.cfg.inner
        chunks = self._chunks(context)
        result = adapt(self.base, self.meta.init_params(), self.meta.lrs(), self.meta.weighting, chunks, inner,
                       create_graph=False, micro_batch_chunks=inner.encode_micro_batch_chunks)
        params = {n: t.detach() for n, t in result.params.items()}
        return Memory(params, chunks.num_chunks, chunks.num_context_tokens, result.losses,
                      time.perf_counter() - start)

    @torch.no_grad()
    def context_loss(self, context: str | Sequence[str], memory: Memory) -> float:
        """The inner objective (weighted next-token loss, a mean over the context's tokens) under ``memory``: with
        ``encode``'s losses, the context loss before and after encoding."""
        chunks = self._chunks(context)
        params = memory.to(self.base.device).params
        total = sum(float(chunk_loss_sum(self.base, params, part, self.meta.weighting, weights_grad=False))
                    for part in chunks.micro_batches(self.cfg.inner.encode_micro_batch_chunks))
        return total / chunks.num_loss_tokens

    def initial_memory(self) -> Memory:
        """The un-adapted meta-learned initialisation as a memory (what the model knows before encoding)."""
        return Memory({n: t.detach() for n, t in self.meta.init_params().items()}, 0, 0)

    def generate(self, memory: Memory, prompts: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        """Greedy generations for raw prompts with the memory's LoRA tensors (moved to the model's device if need be:
        a memory from a cache or another process may be on the CPU)."""
        params = memory.to(self.base.device).params
        return greedy_generate(self.base, params, list(prompts), max_new_tokens or self.cfg.outer.max_new_tokens)

    def answer(self, memory: Memory, questions: Sequence[str], max_new_tokens: int | None = None) -> list[str]:
        """Answer each question from the memory alone (no context in the prompt)."""
        questions = list(questions)
        if not questions or any(not q.strip() for q in questions):
            raise InputError("questions must be a non-empty list of non-blank strings")
        prompts = [question_prompt(memory.num_chunks, q) for q in questions]
        return [extract_answer(text) for text in self.generate(memory, prompts, max_new_tokens)]

    def export(self, memory: Memory, path: str | Path) -> Path:
        """Write the memory as a PEFT adapter folder (servable by vLLM / LoRAX / PeftModel.from_pretrained)."""
        return export_memory(path, self.base, memory.params)
