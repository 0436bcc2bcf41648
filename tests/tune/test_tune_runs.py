"""Tune ablations end to end on a tiny preset: results written, memory rising with truncation, resume."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import ray
from ray import tune

from perk_ray.config import config_from_file
from perk_ray.tuning import Space, TuneOutcome, load_space, run_space

ROOT = Path(__file__).resolve().parents[2]
TINY = ["train.max_steps=3", "data.train_count=8", "data.dev_count=2", "data.test_count=1", "outer.batch_size=2"]


def ablation(name: str, values: int | None = None) -> Space:
    """The space of ``tune_spaces/ablate_<name>.py``, optionally cut to its first ``values`` values."""
    space = load_space(ROOT / "tune_spaces" / f"ablate_{name}.py")
    return replace(space, params={key: list(v)[:values] for key, v in space.params.items()}) if values else space


def run(space: Space, output: Path, **kwargs) -> TuneOutcome:
    return run_space(space, "tiny", TINY, output, verbose=0, log=lambda _: None, **kwargs)


def assert_results(outcome: TuneOutcome, trials: int) -> None:
    table = pd.read_csv(outcome.output / "trials.csv")
    assert len(table) == trials and (table["status"] == "ok").all(), table.to_string()
    assert table[["dev_accuracy", "step_seconds", "peak_mib", "tokens_per_s"]].notna().all().all()
    summary = (outcome.output / "summary.md").read_text()
    assert "## Best configuration" in summary and summary.count("\n| ") == trials + 2  # header, rule, rows
    for plot in ("dev_accuracy.png", "peak_memory.png"):
        assert (outcome.output / plot).read_bytes()[:4] == b"\x89PNG"
    config_from_file(outcome.output / "best_config.yaml")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


class InterruptAfterFirstTrial(tune.Callback):
    """Ctrl-C (SIGINT to this process) once, when the first trial completes; logs trial starts and completions."""

    def __init__(self, log: Path):
        self.log = log

    def _write(self, line: str) -> None:
        with open(self.log, "a") as f:
            f.write(line + "\n")

    def on_trial_start(self, iteration, trials, trial, **info):
        self._write(f"start {trial.trial_id}")

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._write(f"done {trial.trial_id}")
        if "interrupted" not in self.log.read_text():
            self._write("interrupted")
            os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(scope="module")
def truncation(local_ray, tmp_path_factory):
    """The truncation ablation, interrupted after its first trial, then resumed by running it again."""
    root = tmp_path_factory.mktemp("truncation")
    log = root / "events.log"
    log.touch()
    first = run(ablation("truncation"), root / "out", pretrain_steps=5, callbacks=[InterruptAfterFirstTrial(log)])
    events = log.read_text().splitlines()
    second = run(ablation("truncation"), root / "out", pretrain_steps=5)
    return first, second, events, log.read_text().splitlines()[len(events):]


def test_truncation_ablation_writes_table_summary_and_plots(truncation):
    first, second, _, _ = truncation
    assert not first.complete and "unfinished" in set(first.table["status"])
    assert second.complete
    assert_results(second, 4)
    best = config_from_file(second.output / "best_config.yaml")
    assert best.inner.steps == 4 and Path(best.model.pretrained_dir).parent == second.output  # one base, pre-trained


def test_peak_memory_rises_with_truncation_depth(truncation):
    peaks = truncation[1].table.sort_values("inner.truncation")["peak_mib"].tolist()
    assert all(later > earlier for earlier, later in zip(peaks, peaks[1:])), peaks
    assert peaks[-1] > 3 * peaks[0], peaks


def test_interrupted_run_resumes_without_rerunning_finished_trials(truncation):
    _, _, before, after = truncation
    finished = {line.split()[1] for line in before if line.startswith("done")}
    restarted = {line.split()[1] for line in after if line.startswith("start")}
    assert 0 < len(finished) < 4 and restarted, (before, after)
    assert not restarted & finished, (before, after)
    assert len(restarted | finished) == 4


@pytest.mark.parametrize("name", ["inner_steps", "lora_rank"])
def test_ablation_writes_table_summary_and_plots(local_ray, tmp_path, name):
    assert_results(run(ablation(name, values=2), tmp_path / name, pretrain_steps=0), 2)


@pytest.mark.slow
def test_distributed_trial_runs_ray_train_inside_the_trial(local_ray, tmp_path):
    space = Space("workers", {"train.num_workers": [2]}, {"train.cpus_per_worker": 0.5})  # + 1 CPU for data reads
    outcome = run(space, tmp_path / "workers", pretrain_steps=0)
    assert_results(outcome, 1)
    assert list((outcome.output / "trials").glob("*/metrics.jsonl"))  # the Ray Train run's own directory
