"""Ray Train end to end: a killed worker resumes and matches an uninterrupted run; 2 workers on this 2-CPU machine
finish and match 1 worker; bad configs fail fast."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import ray
import torch
from safetensors.torch import load_file

from perk_ray.config import load_config
from perk_ray.engine import PerkEngine
from perk_ray.errors import ConfigError, InputError
from perk_ray.train.data_prep import prepare_splits
from perk_ray.train.ray_trainer import check_branch_point, fit

OVERRIDES = ["train.max_steps=4", "train.checkpoint_every=2", "train.eval_every=2", "train.log_every=1",
             "data.train_count=12", "data.dev_count=2", "data.test_count=2", "outer.batch_size=2",
             "inner.chunk_tokens=32", "model.tiny.hidden_size=32", "model.tiny.intermediate_size=64",
             "train.max_failures=1"]


@pytest.fixture(scope="module")
def local_ray(tmp_path_factory):
    marker_dir = tmp_path_factory.mktemp("markers")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {
        "PERK_FAIL_AT_STEP": "2", "PERK_FAIL_MARKER": str(marker_dir / "failed"), "OMP_NUM_THREADS": "1"}})
    yield marker_dir / "failed"
    ray.shutdown()


def _meta_tensors(checkpoint: Path) -> dict[str, torch.Tensor]:
    tensors = load_file(str(checkpoint / "adapter" / "adapter_model.safetensors"))
    tensors.update(load_file(str(checkpoint / "inner_lrs.safetensors")))
    return tensors


def _run(root: Path, name: str, *overrides: str, branch_from: Path | None = None):
    cfg = load_config("tiny", [*OVERRIDES, *overrides, f"train.output_dir={root / name}"])
    run_dir = Path(cfg.train.output_dir)
    splits = prepare_splits(cfg, root / "shared-data")
    return fit(cfg, splits["train"], splits["dev"], run_dir, branch_from)


def _checkpoint_at(run, step: int) -> Path:
    return next(path.parent for path in (run.run_dir / "ray").rglob("perk.json")
                if json.loads(path.read_text())["info"]["step"] == step)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def clean(local_ray, runs):
    """An uninterrupted 1-worker run."""
    local_ray.write_text("already failed")  # the uninterrupted run must not be killed
    return _run(runs, "clean")


def _losses(run) -> list[tuple[float, ...]]:
    rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["outer_loss"], r["inner_loss_first"], r["inner_loss_last"], r["grad_norm"]) for r in rows]


def test_killed_worker_resumes_and_matches_uninterrupted_run(local_ray, runs, clean):
    marker = local_ray
    marker.unlink()
    resumed = _run(runs, "killed")
    assert marker.exists(), "the worker was never killed"
    assert resumed.metrics["step"] == clean.metrics["step"] == 4
    a, b = _meta_tensors(clean.final_checkpoint), _meta_tensors(resumed.final_checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    lines = (resumed.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) > 4  # steps 3-4 were replayed after the kill: nothing finished was lost
    engine = PerkEngine.from_checkpoint(resumed.best_checkpoint)
    assert engine.answer(engine.encode("The code of lemon is seven."), ["What is the code of lemon?"])


def test_two_workers_on_two_cpus_finish_and_match_one_worker(local_ray, runs, clean):
    """Both CPUs go to the worker group: the splits must be read before it starts (Ray Data lists files in a task
    that needs a CPU), or the run stalls at the read."""
    local_ray.write_text("already failed")  # no worker is killed
    two = _run(runs, "two-workers", "train.num_workers=2")
    assert two.metrics["step"] == 4
    one, both = _losses(clean), _losses(two)
    assert len(one) == len(both) == 4
    for a, b in zip(one, both):
        assert b == pytest.approx(a, rel=1e-5)


def test_branch_with_the_same_settings_replays_the_run_and_with_other_settings_diverges(local_ray, runs, clean):
    local_ray.write_text("already failed")  # no worker is killed
    step2 = _checkpoint_at(clean, 2)
    same = _run(runs, "branch-same", branch_from=step2)
    assert [json.loads(line)["step"] for line in (same.run_dir / "metrics.jsonl").read_text().splitlines()] == [3, 4]
    a, b = _meta_tensors(clean.final_checkpoint), _meta_tensors(same.final_checkpoint)
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)
    other = _run(runs, "branch-increasing", "inner.doc_ids=increasing", branch_from=step2)
    assert other.metrics["step"] == 4
    assert _losses(other)[-1] != _losses(clean)[-1]  # the chunks carry other ids from step 3 on
    assert check_branch_point(step2, runs / "new") == step2.resolve()
    with pytest.raises(ConfigError, match=r"--branch-from .*not a meta-checkpoint"):
        check_branch_point(runs, runs / "new")
    with pytest.raises(ConfigError, match=r"--branch-from: .*clean holds a run already"):
        check_branch_point(step2, clean.run_dir)


def test_more_workers_than_cpus_fails_fast(local_ray, tmp_path):
    cfg = load_config("tiny", [*OVERRIDES, "train.num_workers=4", "outer.batch_size=4"])
    with pytest.raises(ConfigError, match=r"train.num_workers=4 .* needs 4 CPUs; the Ray cluster has 2"):
        fit(cfg, tmp_path / "train.parquet", tmp_path / "dev.parquet", tmp_path / "run")


def test_missing_data_fails_fast(tmp_path):
    cfg = load_config("tiny", [f"data.train_path={tmp_path}/missing.parquet"])
    with pytest.raises(InputError, match=r"data.train_path=.*missing.parquet.*no such file"):
        prepare_splits(cfg, tmp_path)


def test_unknown_strategy_is_refused():
    with pytest.raises(ConfigError, match=r"`train.strategy`.*'ddp', 'fsdp' or 'cp'.*got 'zero'"):
        load_config("tiny", ["train.strategy=zero"])
