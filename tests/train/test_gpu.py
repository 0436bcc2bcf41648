"""GPU paths (bf16, eager attention under double backward). CI has no GPU: these are skipped there, visibly."""

from __future__ import annotations

import pytest
import torch

from perk_ray.engine import PerkEngine
from perk_ray.meta import MetaParams, build_outer_optimizer, meta_step, prepare_task
from perk_ray.model import load_base_model
from tests.conftest import tiny_config

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_bf16_meta_step_with_kept_graph_runs_on_gpu():
    cfg = tiny_config("model.dtype=bfloat16", "inner.steps=4", "inner.truncation=2")
    base = load_base_model(cfg.model, cfg.lora, "cuda")
    meta = MetaParams.from_base(base, cfg)
    optimizer, scheduler = build_outer_optimizer(meta, cfg, 10)
    task = prepare_task(base.tokenizer, cfg, "The code of lemon is seven. " * 8, ["What is the code of lemon?"],
                        ["seven"]).to("cuda")
    stats = meta_step(base, meta, [task], cfg, optimizer, scheduler)
    assert torch.isfinite(torch.tensor(stats.outer_loss)) and stats.grad_norm > 0


def test_encode_and_answer_on_gpu():
    engine = PerkEngine.from_config(tiny_config("model.dtype=bfloat16"), device="cuda")
    memory = engine.encode("The code of lemon is seven.")
    assert memory.inner_losses and engine.answer(memory, ["What is the code of lemon?"], max_new_tokens=4)
