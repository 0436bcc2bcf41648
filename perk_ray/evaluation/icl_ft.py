"""The icl-ft baseline's fine-tune: the LoRA trained on context-in-prompt -> answer, with PERK's data and budget
(train records, outer.epochs x outer.batch_size, outer AdamW settings and schedule, train.max_steps).

Runs on one process or data-parallel under ``torch.distributed`` (Ray Train): ``torch`` all-reduces the LoRA
gradients by hand; ``deepspeed`` runs the same step under DeepSpeed ZeRO-3 (optional dependency).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from perk_ray.config import PerkConfig
from perk_ray.data.schema import TaskRecord
from perk_ray.errors import ConfigError, InputError
from perk_ray.evaluation.methods import model_window
from perk_ray.evaluation.prompts import fit_prompt
from perk_ray.meta import warmup_cosine
from perk_ray.model import BaseModel, load_base_model
from perk_ray.prompts import response_text
from perk_ray.train.collectives import all_reduce, reduce_values
from perk_ray.train.loop import global_batch_indices, total_steps

logger = logging.getLogger(__name__)

Engine = Literal["torch", "deepspeed"]


def deepspeed_available() -> bool:
    return importlib.util.find_spec("deepspeed") is not None


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass
class Example:
    """One training sequence: the fitted ICL prompt then the response; ``labels`` is -100 on the prompt."""

    input_ids: Tensor
    labels: Tensor


def build_example(base: BaseModel, record: TaskRecord, max_prompt_tokens: int, use_support: bool) -> Example:
    """The record's ICL prompt (context cut from the left to fit, as at evaluation) and its response + EOS."""
    tokenizer = base.tokenizer
    fitted = fit_prompt(tokenizer, record.context, record.question, max_prompt_tokens, "truncate")
    if fitted.text is None:
        raise InputError(f"record {record.id}: the question alone exceeds {max_prompt_tokens} prompt tokens")
    prompt = tokenizer.encode(fitted.text, add_special_tokens=False)
    response = tokenizer.encode(response_text(record.answer[0], record.support, use_support),
                                add_special_tokens=False) + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt + response], device=base.device)
    labels = torch.tensor([[-100] * len(prompt) + response], device=base.device)
    return Example(ids, labels)


def response_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean next-token CE over the response tokens."""
    return nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), labels[:, 1:], ignore_index=-100)


def _optimizer(params: list[nn.Parameter], cfg: PerkConfig) -> torch.optim.AdamW:
    outer = cfg.outer
    return torch.optim.AdamW(params, lr=outer.lr, betas=outer.betas, weight_decay=outer.weight_decay)


class TorchFineTune:
    """AdamW on the LoRA tensors; gradients summed over ranks by one all-reduce, then clipped."""

    def __init__(self, base: BaseModel, params: list[nn.Parameter], cfg: PerkConfig, steps: int):
        self.base, self.params, self.cfg = base, params, cfg
        self.optimizer = _optimizer(params, cfg)
        self.scheduler = warmup_cosine(self.optimizer, cfg, steps)

    def micro_step(self, example: Example, global_batch: int) -> float:
        loss = response_loss(self.base.model(input_ids=example.input_ids).logits, example.labels)
        (loss / global_batch).backward()
        return loss.item()

    def step(self) -> None:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if world()[1] > 1:
            flat = all_reduce(torch.cat([g.reshape(-1) for g in grads]), grads[0].device)
            grads = list(torch.split(flat, [g.numel() for g in grads]))
        for p, g in zip(self.params, grads):
            p.grad = g.view_as(p)
        if self.cfg.outer.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.params, self.cfg.outer.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def lora_tensors(self, names: Sequence[str]) -> dict[str, Tensor]:
        return {n: p.detach().clone() for n, p in zip(names, self.params)}


class DeepSpeedFineTune:
    """The same step under DeepSpeed ZeRO-3: one example per micro-batch, accumulation to the global batch."""

    def __init__(self, base: BaseModel, params: list[nn.Parameter], cfg: PerkConfig, steps: int):
        import deepspeed

        _, size = world()
        optimizer = _optimizer(params, cfg)
        config = {
            "train_batch_size": cfg.outer.batch_size, "train_micro_batch_size_per_gpu": 1,
            "gradient_accumulation_steps": cfg.outer.batch_size // size,
            "gradient_clipping": cfg.outer.grad_clip or 0.0, "zero_optimization": {"stage": 3},
            "zero_allow_untested_optimizer": True, "steps_per_print": 1 << 30,
        }
        self.params = params
        self.engine, *_ = deepspeed.initialize(model=base.model, optimizer=optimizer, config=config,
                                               lr_scheduler=warmup_cosine(optimizer, cfg, steps))

    def micro_step(self, example: Example, global_batch: int) -> float:
        loss = response_loss(self.engine(input_ids=example.input_ids).logits, example.labels)
        self.engine.backward(loss)
        self.engine.step()  # an optimiser step at each accumulation boundary
        return loss.item()

    def step(self) -> None:
        """Nothing: DeepSpeed steps at the accumulation boundary."""

    def lora_tensors(self, names: Sequence[str]) -> dict[str, Tensor]:
        import deepspeed

        with deepspeed.zero.GatheredParameters(self.params):
            return {n: p.detach().clone() for n, p in zip(names, self.params)}


@dataclass
class FineTuneResult:
    base: BaseModel
    params: dict[str, Tensor]
    info: dict[str, Any] = field(default_factory=dict)


def _mean_over_ranks(values: list[float], device: torch.device) -> float:
    total, count = reduce_values([sum(values), len(values)], device)
    return total / max(count, 1)


def train_icl_ft(cfg: PerkConfig, records: Sequence[TaskRecord], *, engine: Engine = "torch", device: str = "cpu",
                 log: Callable[[str], None] = logger.info) -> FineTuneResult:
    """Fine-tune the LoRA on ``records`` (every rank passes all of them; each takes its share of a batch)."""
    rank, size = world()
    batch = cfg.outer.batch_size
    if batch % size:
        raise ConfigError(f"outer.batch_size={batch} must be a multiple of the {size} workers")
    if len(records) < batch:
        raise InputError(f"{len(records)} training records, fewer than outer.batch_size={batch}")
    if engine == "deepspeed" and not deepspeed_available():
        raise ConfigError("--engine deepspeed: DeepSpeed is not installed (pip install 'perk-ray[deepspeed]')")
    torch.manual_seed(cfg.train.seed)
    base = load_base_model(cfg.model, cfg.lora, device)
    named = dict(base.model.named_parameters())
    params = [named[n].requires_grad_(True) for n in base.lora_names]
    base.model.train(cfg.lora.dropout > 0)
    steps = total_steps(cfg, len(records))
    trainer = (DeepSpeedFineTune if engine == "deepspeed" else TorchFineTune)(base, params, cfg, steps)
    max_prompt = model_window(base) - cfg.outer.max_new_tokens
    losses = []
    for step in range(steps):
        indices = global_batch_indices(len(records), batch, cfg.train.seed, step)
        mine = [build_example(base, records[i], max_prompt, cfg.outer.use_support) for i in indices[rank::size]]
        step_losses = [trainer.micro_step(example, batch) for example in mine]
        trainer.step()
        losses.append(_mean_over_ranks(step_losses, base.device))
        if rank == 0 and ((step + 1) % cfg.train.log_every == 0 or step + 1 == steps):
            log(f"icl-ft step {step + 1}/{steps} | loss {losses[-1]:.4f}")
    result = trainer.lora_tensors(base.lora_names)
    base.model.eval()
    info = {"steps": steps, "engine": engine, "workers": size, "records": len(records),
            "first_loss": losses[0], "final_loss": losses[-1]}
    return FineTuneResult(base, result, info)
