"""GPU and multi-worker readiness that a CPU can check: adapter keys, SDPA meta-steps, per-rank dropout streams and
their replay on resume, and the dry run of every preset (the checks ``fit`` runs, and the planner's estimate)."""

from __future__ import annotations

import pytest
import torch

from perk_ray.config import available_presets, load_config
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
                        ["What is the code of lemon?"], ["seven"], doc_ids="in_order")
    meta_step(base, meta, [task], cfg, optimizer, scheduler)
    return {n: p.grad.clone() for n, p in meta.named_parameters() if p.grad is not None}


def test_sdpa_meta_step_runs_on_the_math_kernel_and_matches_eager():
    """SDPA's CPU flash kernel has no double backward: the meta-step must run it on the math kernel."""
    eager, sdpa = _meta_grads("eager"), _meta_grads("sdpa")
    assert eager.keys() == sdpa.keys()
    for name, grad in eager.items():  # eager upcasts its softmax to float32, SDPA's math kernel stays in float64
        torch.testing.assert_close(sdpa[name], grad, rtol=1e-4, atol=1e-7, msg=name)


DROPOUT = ["lora.dropout=0.5", "outer.batch_size=1", "train.max_steps=3", "inner.chunk_tokens=32"]


def _dropout_trainer(*overrides: str):
    from perk_ray.train.loop import MetaTrainer
    from tests.conftest import kv_records

    return MetaTrainer(tiny_config(*DROPOUT, *overrides), kv_records(4, 0, "train"), [])


def test_ranks_draw_different_dropout_masks():
    """Two ddp ranks meta-train on copies of one task (no process group needed for the local step): with one dropout
    stream for all ranks their losses would be equal."""
    from perk_ray.train.loop import MetaTrainer
    from tests.conftest import kv_records

    record = kv_records(1, 0, "train")[0]
    losses = []
    for rank in (0, 1):
        trainer = MetaTrainer(tiny_config(*DROPOUT, "outer.batch_size=2", "inner.doc_ids=in_order"),
                              [record, record], [])
        trainer.strategy.rank, trainer.strategy.world_size = rank, 2
        losses.append(trainer.run_step().outer_loss)
    assert losses[0] != losses[1]


def test_resume_replays_the_dropout_streams_of_cpu_and_cuda(tmp_path, monkeypatch):
    """The streams are seeded per step from (seed, rank, step): a resumed run seeds CPU and CUDA as an uninterrupted
    one does, whatever RNG state the new process starts with."""
    cuda_seeds: list[int] = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", cuda_seeds.append)  # what torch.manual_seed seeds CUDA with
    clean = _dropout_trainer()
    clean.run_step()
    clean.run_step()
    checkpoint = clean.save(tmp_path / "ckpt", {})
    cuda_seeds.clear()
    expected = clean.run_step()
    clean_seeds = list(cuda_seeds)
    resumed = _dropout_trainer()
    resumed.restore(checkpoint)
    torch.manual_seed(1234)  # a fresh process's RNG state
    cuda_seeds.clear()
    assert resumed.run_step().outer_loss == expected.outer_loss
    assert cuda_seeds == clean_seeds and cuda_seeds


def _meta_train(argv: list[str], monkeypatch) -> int:
    """``jobs/meta_train.py`` in this process (its imports are already loaded): the exit code."""
    import runpy
    import sys
    from pathlib import Path

    job = Path(__file__).parents[2] / "jobs" / "meta_train.py"
    monkeypatch.setattr(sys, "argv", [str(job), *argv])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(job), run_name="__main__")
    return exit_.value.code


@pytest.mark.parametrize("preset", available_presets())
def test_every_preset_passes_the_dry_run(preset, monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)  # a dry run writes nothing
    assert _meta_train(["--preset", preset, "--dry-run"], monkeypatch) == 0
    out = capsys.readouterr().out
    cfg = load_config(preset)
    assert f"Ray Train: {cfg.train.num_workers} worker(s)" in out and "| total |" in out and "Recommendation:" in out
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--preset", "qwen2.5-0.5b", "--plan", "outer.batch_size=1"],
     "outer.batch_size=1 must be a multiple of train.num_workers=8"),
    (["--preset", "qwen2.5-7b", "--dry-run", "--strategy", "fsdp"], "more than any GPU kind holds"),
])
def test_dry_run_refuses_what_fit_or_the_gpus_cannot_run(argv, message, monkeypatch, capsys):
    assert _meta_train(argv, monkeypatch) == 2
    assert message in capsys.readouterr().err
