"""The meta-objective: meta-parameters, task preparation, the outer (answer) loss and one meta-step."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from perk_ray.chunking import ChunkBatch, chunk_context
from perk_ray.config import PerkConfig
from perk_ray.inner_loop import GradReduce, InnerResult, _float_logits, adapt
from perk_ray.model import BaseModel, current_lora_params, lora_forward
from perk_ray.prompts import question_prompt, response_text
from perk_ray.weighting import TokenWeighting


def _key(name: str) -> str:
    return name.replace(".", "__")


class MetaParams(nn.Module):
    """What meta-training learns: the LoRA initialisation, per-tensor per-step inner rates, the weighting model.

    The rates are learned in log space (``log_inner_lrs``): they stay positive and an outer step changes them by a
    bounded factor, whatever their scale relative to the outer learning rate.
    """

    def __init__(self, init: dict[str, Tensor], cfg: PerkConfig, hidden_size: int):
        super().__init__()
        inner = cfg.inner
        self.names = list(init)
        self.lora_init = nn.ParameterDict({_key(n): nn.Parameter(t.detach().clone()) for n, t in init.items()})
        dtype = next(iter(init.values())).dtype
        log_lr = torch.full((inner.steps,), inner.lr, dtype=dtype).log()
        self.log_inner_lrs = nn.ParameterDict(
            {_key(n): nn.Parameter(log_lr.clone(), requires_grad=inner.learn_lrs) for n in init}
        )
        self.weighting = None
        if inner.weighting == "mlp":
            self.weighting = TokenWeighting(hidden_size, inner.weighting_hidden, inner.weighting_activation,
                                            inner.weighting_normalize).to(dtype)

    @classmethod
    def from_base(cls, base: BaseModel, cfg: PerkConfig) -> MetaParams:
        """Meta-initialisation: peft's LoRA initialisation (A random, B zero) and the configured inner rate."""
        return cls(current_lora_params(base), cfg, base.hidden_size).to(base.device)

    def init_params(self) -> dict[str, Tensor]:
        return {n: self.lora_init[_key(n)] for n in self.names}

    def lrs(self) -> dict[str, Tensor]:
        return {n: self.log_inner_lrs[_key(n)].exp() for n in self.names}


@dataclass
class QABatch:
    """Question prompts and responses; ``labels`` is -100 on the prompt and padding."""

    input_ids: Tensor
    attention_mask: Tensor
    labels: Tensor

    def to(self, device: torch.device | str) -> QABatch:
        return QABatch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


@dataclass
class PreparedTask:
    """One context's chunks and its questions, tokenised."""

    chunks: ChunkBatch
    qa: QABatch

    def to(self, device: torch.device | str) -> PreparedTask:
        return PreparedTask(self.chunks.to(device), self.qa.to(device))


def build_qa_batch(tokenizer, num_documents: int, questions: Sequence[str], answers: Sequence[str],
                   supports: Sequence[Sequence[str]] | None, use_support: bool) -> QABatch:
    rows = []
    for i, (question, answer) in enumerate(zip(questions, answers)):
        support = list(supports[i]) if supports else None
        prompt = tokenizer.encode(question_prompt(num_documents, question), add_special_tokens=False)
        response = tokenizer.encode(response_text(answer, support, use_support), add_special_tokens=False)
        response = response + [tokenizer.eos_token_id]
        rows.append((prompt + response, len(prompt)))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    labels = torch.full_like(input_ids, -100)
    for row, (ids, prompt_len) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
    return QABatch(input_ids, attention_mask, labels)


def prepare_task(tokenizer, cfg: PerkConfig, context: str | Sequence[str], questions: Sequence[str],
                 answers: Sequence[str], supports: Sequence[Sequence[str]] | None = None,
                 generator: torch.Generator | None = None, doc_ids: str | None = None) -> PreparedTask:
    """Tokenise a training context into chunks (doc ids numbered as ``inner.doc_ids``, or ``doc_ids`` when given) and
    its question/answer pairs."""
    inner = cfg.inner
    chunks = chunk_context(tokenizer, context, inner, inner.doc_ids if doc_ids is None else doc_ids, generator)
    qa = build_qa_batch(tokenizer, chunks.num_chunks, questions, answers, supports, cfg.outer.use_support)
    return PreparedTask(chunks, qa)


def answer_loss(base: BaseModel, params: dict[str, Tensor], qa: QABatch) -> Tensor:
    """Mean CE of the response tokens given the question prompt, with the adapted LoRA and no context."""
    logits = _float_logits(lora_forward(base, params, qa.input_ids, qa.attention_mask).logits[:, :-1])
    targets = qa.labels[:, 1:]
    return nn.functional.cross_entropy(logits.transpose(1, 2), targets, ignore_index=-100)


@dataclass
class TaskLoss:
    loss: Tensor
    inner: InnerResult


def task_loss(base: BaseModel, meta: MetaParams, task: PreparedTask, cfg: PerkConfig, *, create_graph: bool = True,
              grad_reduce: GradReduce | None = None, total_tokens: int | None = None) -> TaskLoss:
    """Encode the context with the inner loop, then the answer loss with the adapted memory."""
    inner = adapt(base, meta.init_params(), meta.lrs(), meta.weighting, task.chunks, cfg.inner,
                  create_graph=create_graph, grad_reduce=grad_reduce, total_tokens=total_tokens)
    return TaskLoss(answer_loss(base, inner.params, task.qa), inner)


def build_outer_optimizer(meta: MetaParams, cfg: PerkConfig, total_steps: int):
    """AdamW over the meta-parameters with linear warmup then cosine decay to 10%.

    Three groups: the LoRA init and weighting weights (outer.lr, weight decay), the weighting model's biases (no
    weight decay, as the official code) and the log inner rates (``outer.lr_lr``, no weight decay).
    """
    outer = cfg.outer
    lr_params = [p for p in meta.log_inner_lrs.parameters() if p.requires_grad]
    trainable = [(name, p) for name, p in meta.named_parameters()
                 if not name.startswith("log_inner_lrs") and p.requires_grad]
    decayed = [p for name, p in trainable if not (name.startswith("weighting.") and name.endswith(".bias"))]
    biases = [p for name, p in trainable if name.startswith("weighting.") and name.endswith(".bias")]
    groups = [{"params": decayed, "lr": outer.lr}]
    if biases:
        groups.append({"params": biases, "lr": outer.lr, "weight_decay": 0.0})
    if lr_params:
        groups.append({"params": lr_params, "lr": outer.lr_lr or outer.lr / cfg.inner.lr, "weight_decay": 0.0})
    optimizer = torch.optim.AdamW(groups, lr=outer.lr, betas=outer.betas, weight_decay=outer.weight_decay)
    return optimizer, warmup_cosine(optimizer, cfg, total_steps)


def warmup_cosine(optimizer: torch.optim.Optimizer, cfg: PerkConfig, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """PERK's outer schedule: linear warmup over outer.warmup_frac of the steps, then cosine decay to 10%."""
    warmup = max(1, int(round(cfg.outer.warmup_frac * steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class StepStats:
    """What one meta-step measured on this process."""

    outer_loss: float
    inner_first: float
    inner_last: float
    grad_norm: float
    context_tokens: int


# SDPA's flash and memory-efficient kernels (CPU and GPU) have no double backward; its math kernel has, with the
# same numbers (design.md), so model.attn_implementation=sdpa meta-trains on it
@sdpa_kernel(SDPBackend.MATH)
def meta_step(base: BaseModel, meta: MetaParams, tasks: Sequence[PreparedTask], cfg: PerkConfig,
              optimizer: torch.optim.Optimizer, scheduler=None, *, global_batch: int | None = None,
              sync_grads: Callable[[MetaParams], None] | None = None,
              grad_reduce: GradReduce | None = None, total_tokens: Sequence[int] | None = None) -> StepStats:
    """Accumulate the meta-gradient over this process's tasks, sync it, clip and step the outer optimiser.

    ``global_batch`` is the number of tasks over all workers (the loss is their mean); ``sync_grads`` sums the
    meta-gradients over workers (data parallel); ``grad_reduce``/``total_tokens`` shard each context's chunks
    over ranks (context parallel).
    """
    optimizer.zero_grad(set_to_none=True)
    global_batch = global_batch or len(tasks)
    stats = []
    for i, task in enumerate(tasks):
        result = task_loss(base, meta, task, cfg, create_graph=True, grad_reduce=grad_reduce,
                           total_tokens=total_tokens[i] if total_tokens else None)
        (result.loss / global_batch).backward()
        stats.append((result.loss.item(), result.inner.losses[0], result.inner.losses[-1],
                      task.chunks.num_context_tokens))
    if sync_grads is not None:
        sync_grads(meta)
    params = [p for p in meta.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    max_norm = cfg.outer.grad_clip if cfg.outer.grad_clip is not None else float("inf")
    grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    n = max(1, len(stats))
    return StepStats(
        outer_loss=sum(s[0] for s in stats) / n, inner_first=sum(s[1] for s in stats) / n,
        inner_last=sum(s[2] for s in stats) / n, grad_norm=grad_norm, context_tokens=sum(s[3] for s in stats),
    )
