"""Brief causal-LM pre-training of the ``tiny`` base on a task's language (what a real user gets from a hub model).

A randomly initialised tiny model cannot express a confident next-token distribution at all (tied embeddings of
norm ~0.16 after the final RMSNorm cap every logit near 1), so no LoRA on its projections can learn to answer.
A minute of full-parameter pre-training on text of the task fixes the vocabulary statistics; the base is then frozen
for meta-training as usual.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from collections.abc import Callable, Iterable

import torch
from transformers import Qwen2ForCausalLM

from perk_ray.config import ModelConfig
from perk_ray.model import load_tokenizer, tiny_qwen2_config

logger = logging.getLogger(__name__)


def task_text(records: Iterable[dict]) -> list[str]:
    """Documents in the task's language: the contexts, and question/answer turns with their context in the prompt."""
    texts = []
    for record in records:
        context = " ".join(record["context"])
        texts.append(f"doc_0: {context}")
        texts.append(f"{context}\n{record['question']}\nAnswer: {list(record['answer'])[0]}")
    return texts


def pretrain_tiny_base(model_cfg: ModelConfig, texts: list[str], out_dir: str | Path, *, steps: int = 300,
                       batch_size: int = 16, seq_len: int = 128, lr: float = 3e-3, seed: int = 0,
                       log: Callable[[str], None] = logger.info) -> Path:
    """Train the tiny Qwen2 on ``texts`` (random windows of the concatenated token stream); save it to ``out_dir``."""
    tokenizer = load_tokenizer("tiny")
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(tiny_qwen2_config(model_cfg, len(tokenizer)))
    stream = torch.tensor([t for text in texts for t in tokenizer.encode(text + "\n") + [tokenizer.eos_token_id]])
    if len(stream) <= seq_len + 1:
        raise ValueError(f"pre-training text has {len(stream)} tokens; need more than seq_len={seq_len}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        offsets = torch.randint(0, len(stream) - seq_len - 1, (batch_size,), generator=generator)
        batch = torch.stack([stream[o : o + seq_len + 1] for o in offsets.tolist()])
        loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % 100 == 0 or step == steps - 1:
            log(f"pre-train step {step + 1}/{steps} | loss {loss.item():.3f} | {time.perf_counter() - start:.0f} s")
    model.eval()
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    return out_dir
