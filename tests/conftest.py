"""Shared fixtures: tiny configs and models, float64 numerics."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import torch
from transformers.models.qwen2 import modeling_qwen2

from perk_ray.config import PerkConfig, load_config
from perk_ray.model import BaseModel, load_base_model

JOBS = Path(__file__).resolve().parents[1] / "jobs"


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


KV_OVERRIDES = ["outer.lr=0.003", "outer.batch_size=4", "inner.chunk_tokens=64"]
KV_PAIRS = 2


def kv_records(count: int, seed: int, split: str) -> list[dict]:
    """kv-recall tasks with two facts per context (chance: 1 in 10 digit words)."""
    from perk_ray.data import generate

    return [{"id": r.id, "context": r.context, "question": r.question, "answer": r.answer, "support": r.support}
            for r in generate("kv-recall", count=count, target_tokens=None, seed=seed, split=split, num_pairs=KV_PAIRS)]


@pytest.fixture(scope="session")
def kv_pretrained_base(tmp_path_factory):
    """A tiny base briefly pre-trained on kv-recall text (so that it can express the answers)."""
    from perk_ray.pretrain import pretrain_tiny_base, task_text

    root = tmp_path_factory.mktemp("kv-base")
    return pretrain_tiny_base(load_config("tiny").model, task_text(kv_records(1000, 5, "pretrain")), root / "base",
                              steps=200, batch_size=8, seq_len=96, log=lambda _: None)


def meta_train_kv(base_dir, out_dir, *overrides: str):
    """PERK meta-training (frozen base) on kv-recall for 150 steps; the checkpoint's path."""
    from perk_ray.train.loop import MetaTrainer

    cfg = load_config("tiny", [*KV_OVERRIDES, f"model.pretrained_dir={base_dir}", "train.max_steps=150", *overrides])
    trainer = MetaTrainer(cfg, kv_records(1000, 0, "train"), [])
    while trainer.step < trainer.total_steps:
        trainer.run_step()
    return trainer.save(out_dir / "checkpoint", {})


@pytest.fixture(scope="session")
def kv_checkpoint(tmp_path_factory, kv_pretrained_base):
    return meta_train_kv(kv_pretrained_base, tmp_path_factory.mktemp("kv"))


@pytest.fixture(scope="session")
def kv_checkpoint_bf16(tmp_path_factory, kv_pretrained_base):
    """The same meta-training with a bf16 frozen base (fp32 LoRA, meta-parameters and losses)."""
    return meta_train_kv(kv_pretrained_base, tmp_path_factory.mktemp("kv-bf16"), "model.dtype=bfloat16")


@pytest.fixture(autouse=True, scope="module")
def _isolated_ray():
    """Each test module starts and ends without a Ray instance (a module that leaks one breaks the next ray.init)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def run_job(monkeypatch, capsys):
    """Run ``jobs/<script>`` in this process: (exit code, stdout, stderr)."""
    def run(script: str, *args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_path(str(JOBS / script), run_name="__main__")
        captured = capsys.readouterr()
        return exit_info.value.code, captured.out, captured.err

    return run
