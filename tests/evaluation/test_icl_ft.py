"""The icl-ft baseline's fine-tune: data-parallel on Ray Train equals one process; DeepSpeed ZeRO-3 (optional)
equals the torch engine."""

from __future__ import annotations

import pytest
import torch

from perk_ray.config import load_config
from perk_ray.data import write_parquet
from perk_ray.engine import PerkEngine
from perk_ray.evaluation.baseline_checkpoint import load_baseline_params, read_baseline_info
from perk_ray.evaluation.icl_ft import train_icl_ft

STEPS = 2
OVERRIDES = ["outer.batch_size=2", f"train.max_steps={STEPS}", "outer.lr=0.01"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, train_records):
    directory = tmp_path_factory.mktemp("kv")
    write_parquet(train_records[:8], directory / "train.parquet")
    write_parquet(train_records[8:10], directory / "test.parquet")  # must not be trained on
    return directory


def _in_process(kv_config, records, engine="torch"):
    cfg = load_config("tiny", [f"model.pretrained_dir={kv_config.model.pretrained_dir}", *OVERRIDES])
    return train_icl_ft(cfg, sorted(records, key=lambda r: r.id), engine=engine, log=lambda _: None)


def _run_job(run_job, data_dir, output, engine, config, overrides=()):
    return run_job("train_baseline.py", *config, "--data", data_dir, "--output", output, "--engine", engine,
                   "--workers", 2, *overrides, *OVERRIDES)


def test_ray_train_data_parallel_equals_one_process(run_job, kv_config, meta_checkpoint, train_records, data_dir,
                                                     tmp_path):
    """Two workers on the PERK checkpoint's config (``--like``) give the adapter of one process."""
    code, stdout, _ = _run_job(run_job, data_dir, tmp_path / "icl-ft", "torch", ["--like", meta_checkpoint])
    assert code == 0 and "icl-ft (torch, 2 workers)" in stdout
    info = read_baseline_info(tmp_path / "icl-ft")
    assert info.info["steps"] == STEPS and info.info["workers"] == 2 and info.info["records"] == 8
    engine = PerkEngine.from_config(kv_config)
    params = load_baseline_params(tmp_path / "icl-ft", engine.base, engine.cfg.lora)
    expected = _in_process(kv_config, train_records[:8]).params
    for name, tensor in expected.items():
        torch.testing.assert_close(params[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
    assert any(not torch.equal(params[n], t) for n, t in engine.initial_memory().params.items())


@pytest.mark.slow
def test_deepspeed_zero3_equals_the_torch_engine(run_job, kv_config, train_records, data_dir, tmp_path):
    """Two Ray Train workers under DeepSpeed ZeRO-3 (gloo): the same LoRA as the torch engine."""
    pytest.importorskip("deepspeed")
    code, stdout, _ = _run_job(run_job, data_dir, tmp_path / "ds", "deepspeed", ["--preset", "tiny"],
                               [f"model.pretrained_dir={kv_config.model.pretrained_dir}"])
    assert code == 0 and "icl-ft (deepspeed, 2 workers)" in stdout
    engine = PerkEngine.from_config(kv_config)
    params = load_baseline_params(tmp_path / "ds", engine.base, engine.cfg.lora)
    for name, tensor in _in_process(kv_config, train_records[:8]).params.items():
        torch.testing.assert_close(params[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
