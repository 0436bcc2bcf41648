"""GPU and multi-worker readiness that a CPU can check: adapter keys, SDPA meta-steps, per-rank dropout streams and
their replay on resume, and the dry run of every preset."""

from __future__ import annotations

import pytest
import torch

from perk_ray.errors import InputError
from perk_ray.meta import MetaParams, build_outer_optimizer, meta_step, prepare_task
from perk_ray.model import base_forward, current_lora_params, load_base_model, lora_forward
from tests.conftest import tiny_config


def test_lora_forward_refuses_an_unknown_adapter_key():
    cfg = tiny_config()
    base = load_base_model(cfg.model, cfg.lora)
    params = current_lora_params(base)
    name = next(n for n in params if ".lora_B." in n)
    params[name.replace("lora_B", "lora_b")] = params.pop(name)
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(InputError, match=r"'.*\.lora_b\..*' is not a LoRA tensor of this base model"):
        lora_forward(base, params, ids)
    assert base_forward(base, ids).logits.shape[:2] == (1, 3)  # a subset of the LoRA tensors is fine


def _meta_grads(attn: str) -> dict[str, torch.Tensor]:
    cfg = tiny_config("model.dtype=float64", f"model.attn_implementation={attn}", "inner.chunk_tokens=16")
    base = load_base_model(cfg.model, cfg.lora)
    meta = MetaParams.from_base(base, cfg)
    optimizer, scheduler = build_outer_optimizer(meta, cfg, 10)
    task = prepare_task(base.tokenizer, cfg, ["The code of lemon is seven. The sky is grey today."],
                        ["What is the code of lemon?"], ["seven"], shuffle=False)
    meta_step(base, meta, [task], cfg, optimizer, scheduler)
    return {n: p.grad.clone() for n, p in meta.named_parameters() if p.grad is not None}


def test_sdpa_meta_step_runs_on_the_math_kernel_and_matches_eager():
    """SDPA's CPU flash kernel has no double backward: the meta-step must run it on the math kernel."""
    eager, sdpa = _meta_grads("eager"), _meta_grads("sdpa")
    assert eager.keys() == sdpa.keys()
    for name, grad in eager.items():  # eager upcasts its softmax to float32, SDPA's math kernel stays in float64
        torch.testing.assert_close(sdpa[name], grad, rtol=1e-4, atol=1e-7, msg=name)
