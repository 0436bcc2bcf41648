"""Meta-gradient numerics in float64: finite differences, T = K full unroll, T = 0 first order, micro-batching."""

from __future__ import annotations

import pytest
import torch

from perk_ray.meta import MetaParams, answer_loss, prepare_task, task_loss
from perk_ray.inner_loop import chunk_loss_sum
from perk_ray.model import lora_forward
from tests.conftest import tiny_base, tiny_config

CONTEXT = ["The code of lemon is seven. The code of fig is two.", "The code of pear is one. The code of kiwi is six."]


def _setup(*overrides: str):
    cfg = tiny_config(
        "model.dtype=float64", "model.tiny.hidden_size=16", "model.tiny.num_layers=1", "model.tiny.num_heads=2",
        "model.tiny.num_kv_heads=1", "model.tiny.intermediate_size=32", "lora.rank=2", "inner.chunk_tokens=24",
        "inner.micro_batch_chunks=2", "inner.weighting_hidden=8", "inner.lr=0.05", "inner.doc_ids=in_order",
        *overrides,
    )
    base = tiny_base(cfg)
    meta = MetaParams.from_base(base, cfg)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # move away from peft's B = 0 and the zero last weighting layer: generic point
        for p in meta.parameters():
            if p.ndim == 2 or p.ndim == 1 and p.numel() > 1 and p.shape[0] != cfg.inner.steps:
                p.add_(0.2 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    task = prepare_task(base.tokenizer, cfg, CONTEXT, ["What is the code of fig?"], ["two"])
    return cfg, base, meta, task


def _loss(cfg, base, meta, task):
    return task_loss(base, meta, task, cfg, create_graph=True).loss


def _finite_difference(cfg, base, meta, task, param, index, h=1e-6):
    with torch.no_grad():
        orig = param[index].item()
        param[index] = orig + h
        plus = _loss(cfg, base, meta, task).item()
        param[index] = orig - h
        minus = _loss(cfg, base, meta, task).item()
        param[index] = orig
    return (plus - minus) / (2 * h)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_meta_gradient_matches_finite_differences(float64_qwen, optimizer):
    # eps keeps Adam's g / sqrt(v) smooth at the scale of the finite-difference step
    cfg, base, meta, task = _setup(f"inner.optimizer={optimizer}", "inner.steps=2", "inner.truncation=2",
                                   "inner.eps=1e-3")
    loss = _loss(cfg, base, meta, task)
    loss.backward()
    lora_a = meta.lora_init[next(k for k in meta.lora_init.keys() if "lora_A" in k)]
    lora_b = meta.lora_init[next(k for k in meta.lora_init.keys() if "lora_B" in k)]
    rate = next(iter(meta.log_inner_lrs.values()))
    weighting = meta.weighting.net[2].weight
    checks = [(lora_a, (0, 1)), (lora_b, (1, 0)), (rate, (0,)), (rate, (1,)), (weighting, (0, 3))]
    for param, index in checks:
        analytic = param.grad[index].item()
        numeric = _finite_difference(cfg, base, meta, task, param, index)
        assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-9), (param.shape, index)
        assert abs(numeric) > 1e-8  # a real check, not 0 == 0


def test_rates_inside_truncation_window_are_exact(float64_qwen):
    """With T < K the gradient of a rate of a kept step is exact (every later step keeps its graph)."""
    cfg, base, meta, task = _setup("inner.steps=3", "inner.truncation=2")
    _loss(cfg, base, meta, task).backward()
    rate = next(iter(meta.log_inner_lrs.values()))
    for k in (1, 2):
        assert rate.grad[k].item() == pytest.approx(_finite_difference(cfg, base, meta, task, rate, (k,)), rel=1e-5)


def _reference_unroll(cfg, base, meta, task):
    """A plain full second-order unroll: every step with create_graph, all chunks in one batch, SGD."""
    params = meta.init_params()
    lrs = meta.lrs()
    for k in range(cfg.inner.steps):
        loss = chunk_loss_sum(base, params, task.chunks, meta.weighting, weights_grad=True)
        loss = loss / task.chunks.num_loss_tokens
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        norm = torch.sqrt(sum((g * g).sum() for g in grads) + 1e-20)
        scale = torch.clamp(cfg.inner.grad_clip / (norm + 1e-6), max=1.0)
        params = {n: p - lrs[n][k] * (g * scale + cfg.inner.weight_decay * p)
                  for (n, p), g in zip(params.items(), grads)}
    return answer_loss(base, params, task.qa)


def _grads(meta):
    return torch.cat([p.grad.flatten() for p in meta.parameters()])


def test_full_truncation_equals_full_second_order_unroll(float64_qwen):
    cfg, base, meta, task = _setup("inner.optimizer=sgd", "inner.steps=3", "inner.truncation=3", "inner.grad_clip=0.5")
    _loss(cfg, base, meta, task).backward()
    ours = _grads(meta)
    meta.zero_grad()
    _reference_unroll(cfg, base, meta, task).backward()
    torch.testing.assert_close(ours, _grads(meta), rtol=1e-10, atol=1e-12)


def test_zero_truncation_is_first_order(float64_qwen):
    # no weight decay: it scales dθ_K/dθ_0
    cfg, base, meta, task = _setup("inner.steps=3", "inner.truncation=0", "inner.weight_decay=0")
    result = task_loss(base, meta, task, cfg, create_graph=True)
    result.loss.backward()
    final = {n: p.detach().requires_grad_(True) for n, p in result.inner.params.items()}
    first_order = torch.autograd.grad(answer_loss(base, final, task.qa), list(final.values()))
    for name, grad in zip(final, first_order):
        torch.testing.assert_close(meta.lora_init[name.replace(".", "__")].grad, grad)
    assert all(p.grad is None or not p.grad.any() for p in meta.weighting.parameters())


def test_micro_batching_does_not_change_the_meta_gradient(float64_qwen):
    per_step = []
    for micro in (1, 2, 4):
        cfg, base, meta, task = _setup(f"inner.micro_batch_chunks={micro}", "inner.steps=2", "inner.truncation=2")
        _loss(cfg, base, meta, task).backward()
        per_step.append(_grads(meta))
    torch.testing.assert_close(per_step[0], per_step[1], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(per_step[0], per_step[2], rtol=1e-10, atol=1e-12)


def test_lora_forward_uses_the_given_tensors(float64_qwen):
    cfg, base, meta, task = _setup()
    params = meta.init_params()
    before = lora_forward(base, params, task.qa.input_ids).logits
    shifted = {n: p + 0.5 for n, p in params.items()}
    after = lora_forward(base, shifted, task.qa.input_ids).logits
    assert not torch.allclose(before, after)
    torch.testing.assert_close(lora_forward(base, params, task.qa.input_ids).logits, before)
