"""Batched greedy decoding with swapped-in LoRA tensors (functional calls: no module state is changed)."""

from __future__ import annotations

import torch
from torch import Tensor

from perk_ray.model import BaseModel, lora_forward


@torch.no_grad()
def greedy_generate(base: BaseModel, params: dict[str, Tensor], prompts: list[str], max_new_tokens: int) -> list[str]:
    """Greedy continuation of each prompt (left-padded batch, KV cache), decoded without special tokens."""
    tokenizer = base.tokenizer
    rows = [tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    width = max(len(r) for r in rows)
    device = base.device
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long, device=device)
    attention_mask = torch.zeros_like(input_ids)
    for i, ids in enumerate(rows):
        input_ids[i, width - len(ids):] = torch.tensor(ids, device=device)
        attention_mask[i, width - len(ids):] = 1
    position_ids = (attention_mask.cumsum(-1) - 1).clamp_min(0)
    eos = tokenizer.eos_token_id
    done = torch.zeros(len(rows), dtype=torch.bool, device=device)
    generated: list[Tensor] = []
    past = None
    step_ids = input_ids
    for _ in range(max_new_tokens):
        out = lora_forward(base, params, step_ids, attention_mask, position_ids=position_ids,
                           past_key_values=past, use_cache=True)
        past = out.past_key_values
        next_ids = out.logits[:, -1].argmax(-1)
        next_ids = torch.where(done, torch.full_like(next_ids, tokenizer.pad_token_id), next_ids)
        generated.append(next_ids)
        done |= next_ids == eos
        if bool(done.all()):
            break
        step_ids = next_ids[:, None]
        attention_mask = torch.cat([attention_mask, torch.ones_like(step_ids)], dim=1)
        position_ids = position_ids[:, -1:] + 1
    tokens = torch.stack(generated, dim=1).tolist()
    texts = []
    for row in tokens:
        if eos in row:
            row = row[: row.index(eos)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True))
    return texts
