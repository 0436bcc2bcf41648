"""The compared methods: each turns one record into a prediction with its measured latency and peak memory.

- ``perk``: encode the context into the meta-trained memory, answer without the context in the prompt.
- ``ttl``: the same inner loop from peft's LoRA init at the configured constant rate, no token weighting
  (test-time LoRA fine-tuning on the context without meta-training, Temp-LoRA/LIFT style).
- ``closed-book``: the meta-trained initialisation without encoding (what the model guesses without the context).
- ``icl``: the plain base model (LoRA B all zero) with the context in the prompt.
- ``icl-ft``: a LoRA fine-tuned on context-in-prompt -> answer (``jobs/train_baseline.py``), context in the prompt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from torch import Tensor

from perk_ray.chunking import chunk_context
from perk_ray.config import PerkConfig, apply_overrides, build_config
from perk_ray.data.schema import TaskRecord
from perk_ray.engine import Memory, PerkEngine
from perk_ray.checkpoint import read_checkpoint_info
from perk_ray.errors import CheckpointError, InputError
from perk_ray.evaluation.baseline_checkpoint import check_baseline, load_baseline_params
from perk_ray.evaluation.prompts import (Overflow, PromptBuilder, QuestionBuilder, Template, fit_prompt, icl_prompt,
                                        prompt_builder, question_builder)
from perk_ray.meta import MetaParams
from perk_ray.model import BaseModel, current_lora_params, model_fingerprint
from perk_ray.profiling import PeakMemory
from perk_ray.prompts import extract_answer, question_prompt

METHODS = ("perk", "ttl", "closed-book", "icl", "icl-ft")
T = TypeVar("T")


@dataclass
class Outcome:
    """One method's answer to one record; ``status`` is ok, truncated (context cut from the left) or impossible."""

    prediction: str
    generation: str
    status: str
    prompt_tokens: int
    dropped_tokens: int = 0
    encode_s: float | None = None
    encode_peak_bytes: int | None = None
    answer_s: float | None = None
    answer_peak_bytes: int | None = None
    note: str = ""
    inner_losses: list[float] | None = None  # memory methods: the inner loss before each inner step and after the last


class Method(Protocol):
    name: str

    def run(self, record: TaskRecord) -> Outcome: ...


def measured(device, fn: Callable[[], T]) -> tuple[T, float, int]:
    """``fn()`` with its wall-clock seconds and measured peak memory in bytes."""
    with PeakMemory(device) as mem:
        start = time.perf_counter()
        value = fn()
        seconds = time.perf_counter() - start
    return value, seconds, mem.peak_bytes


def _count(base: BaseModel, text: str) -> int:
    return len(base.tokenizer.encode(text, add_special_tokens=False))


@dataclass
class MemoryMethod:
    """Encode the context into a memory (``perk``, ``ttl``), then answer from the question prompt alone."""

    name: str
    engine: PerkEngine
    max_new_tokens: int
    build: QuestionBuilder = question_prompt

    def run(self, record: TaskRecord) -> Outcome:
        device = self.engine.base.device
        try:
            memory, encode_s, encode_peak = measured(device, lambda: self.engine.encode(record.context))
        except InputError as err:  # over inner.max_context_tokens
            return Outcome("", "", "impossible", 0, note=str(err))
        prompt = self.build(memory.num_chunks, record.question)
        text, answer_s, answer_peak = measured(
            device, lambda: self.engine.generate(memory, [prompt], self.max_new_tokens)[0])
        return Outcome(extract_answer(text), text, "ok", _count(self.engine.base, prompt), 0, encode_s, encode_peak,
                       answer_s, answer_peak, inner_losses=[*memory.inner_losses,
                                                            self.engine.context_loss(record.context, memory)])


@dataclass
class ClosedBookMethod:
    """The meta-trained initial memory, not adapted to the context, with PERK's prompt (same document count)."""

    engine: PerkEngine
    max_new_tokens: int
    name: str = "closed-book"

    def run(self, record: TaskRecord) -> Outcome:
        memory = self.engine.initial_memory()
        memory.num_chunks = chunk_context(self.engine.base.tokenizer, record.context, self.engine.cfg.inner,
                                          max_context_tokens=1 << 62).num_chunks
        prompt = question_prompt(memory.num_chunks, record.question)
        text, answer_s, answer_peak = measured(
            self.engine.base.device, lambda: self.engine.generate(memory, [prompt], self.max_new_tokens)[0])
        return Outcome(extract_answer(text), text, "ok", _count(self.engine.base, prompt), answer_s=answer_s,
                       answer_peak_bytes=answer_peak)


@dataclass
class PromptMethod:
    """The context in the prompt (``icl``, ``icl-ft``), fitted into ``window`` tokens minus the generation."""

    name: str
    engine: PerkEngine
    params: dict[str, Tensor]
    window: int
    max_new_tokens: int
    overflow: Overflow
    build: PromptBuilder = icl_prompt

    def run(self, record: TaskRecord) -> Outcome:
        limit = self.window - self.max_new_tokens
        fitted = fit_prompt(self.engine.base.tokenizer, record.context, record.question, limit, self.overflow,
                            self.build)
        if fitted.text is None:
            return Outcome("", "", "impossible", fitted.prompt_tokens, note=(
                f"prompt of {fitted.prompt_tokens} tokens does not fit the window of {self.window} tokens "
                f"minus {self.max_new_tokens} new tokens"))
        memory = Memory(self.params, 0, 0)
        text, answer_s, answer_peak = measured(
            self.engine.base.device, lambda: self.engine.generate(memory, [fitted.text], self.max_new_tokens)[0])
        return Outcome(extract_answer(text), text, fitted.status, fitted.prompt_tokens, fitted.dropped_tokens,
                       answer_s=answer_s, answer_peak_bytes=answer_peak)


def model_window(base: BaseModel) -> int:
    """The base model's context window (``max_position_embeddings``)."""
    return int(base.model.get_base_model().config.max_position_embeddings)


def plain_base_params(base: BaseModel) -> dict[str, Tensor]:
    """LoRA tensors that leave the base model unchanged: peft's A with every B zero."""
    return {n: t.zero_() if ".lora_B." in n else t for n, t in current_lora_params(base).items()}


def untrained_engine(engine: PerkEngine) -> PerkEngine:
    """The ``ttl`` engine on the same base: peft's LoRA init, the configured constant inner rate, no weighting."""
    cfg: PerkConfig = build_config(apply_overrides(engine.cfg.to_dict(), ["inner.weighting=none"]))
    return PerkEngine(cfg, engine.base, MetaParams.from_base(engine.base, cfg))


def check_methods(names: list[str], icl_ft_checkpoint: str | Path | None) -> None:
    """Known, distinct method names; icl-ft only with its checkpoint."""
    unknown = [n for n in names if n not in METHODS]
    if unknown or not names:
        problem = f"unknown method {unknown[0]!r}" if unknown else "no method given"
        raise InputError(f"{problem}; choose among {', '.join(METHODS)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"method {repeated[0]!r} is given more than once")
    if "icl-ft" in names and icl_ft_checkpoint is None:
        raise InputError("method icl-ft needs --icl-ft-checkpoint (train it with jobs/train_baseline.py)")


def check_inputs(checkpoint: str | Path, methods: list[str], icl_ft_checkpoint: str | Path | None) -> None:
    """What loading would refuse, checked without loading the model: the methods, the PERK checkpoint and its
    base model, and the icl-ft checkpoint's base model and LoRA."""
    check_methods(methods, icl_ft_checkpoint)
    info = read_checkpoint_info(checkpoint)
    fingerprint = model_fingerprint(info.config.model)
    if info.base_fingerprint != fingerprint:
        raise CheckpointError(f"checkpoint {checkpoint} was meta-trained on base {info.config.model.name!r} "
                              f"(fingerprint {info.base_fingerprint}), not on the loaded base {fingerprint}")
    if "icl-ft" in methods:
        check_baseline(icl_ft_checkpoint, fingerprint, info.config.lora)


def build_methods(engine: PerkEngine, names: list[str], *, max_new_tokens: int, window: int, overflow: Overflow,
                  icl_ft_checkpoint: str | Path | None = None, icl_template: Template = "plain",
                  ttl_template: Template = "plain") -> list[Method]:
    """The runners of ``names`` sharing one base model (the ``ttl``/``icl`` LoRA tensors are built, not loaded);
    ``icl_template`` applies to ``icl`` only (``icl-ft`` keeps the plain prompt it was fine-tuned on),
    ``ttl_template`` to ``ttl`` only (``perk`` and ``closed-book`` keep the prompt of meta-training)."""
    check_methods(names, icl_ft_checkpoint)
    runners: list[Method] = []
    for name in names:
        if name == "perk":
            runners.append(MemoryMethod(name, engine, max_new_tokens))
        elif name == "ttl":
            runners.append(MemoryMethod(name, untrained_engine(engine), max_new_tokens,
                                        question_builder(engine.base.tokenizer, ttl_template)))
        elif name == "closed-book":
            runners.append(ClosedBookMethod(engine, max_new_tokens))
        elif name == "icl":
            runners.append(PromptMethod(name, engine, plain_base_params(engine.base), window, max_new_tokens, overflow,
                                        prompt_builder(engine.base.tokenizer, icl_template)))
        else:
            params = load_baseline_params(icl_ft_checkpoint, engine.base, engine.cfg.lora)
            runners.append(PromptMethod(name, engine, params, window, max_new_tokens, overflow))
    return runners
