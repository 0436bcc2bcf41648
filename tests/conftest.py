"""Shared fixtures: tiny configs and models, float64 numerics."""

from __future__ import annotations

import pytest
import torch
from transformers.models.qwen2 import modeling_qwen2

from perk_ray.config import PerkConfig, load_config
from perk_ray.model import BaseModel, load_base_model


def tiny_config(*overrides: str) -> PerkConfig:
    return load_config("tiny", list(overrides))


def tiny_base(cfg: PerkConfig) -> BaseModel:
    base = load_base_model(cfg.model, cfg.lora)
    base.model.eval()
    return base


def _rmsnorm_keep_dtype(self, hidden_states):
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))


def _eager_attention_keep_dtype(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    key = modeling_qwen2.repeat_kv(key, module.num_key_value_groups)
    value = modeling_qwen2.repeat_kv(value, module.num_key_value_groups)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = torch.softmax(weights, dim=-1)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


@pytest.fixture
def float64_qwen(monkeypatch):
    """Qwen2 upcasts RMSNorm and softmax to float32 even in float64: keep them in float64 for gradient checks."""
    monkeypatch.setattr(modeling_qwen2.Qwen2RMSNorm, "forward", _rmsnorm_keep_dtype)
    monkeypatch.setattr(modeling_qwen2, "eager_attention_forward", _eager_attention_keep_dtype)
    torch.manual_seed(0)
    yield
