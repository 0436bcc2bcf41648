"""Search spaces and trial resources, checked without starting Ray: bad spaces are refused before any trial."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from ray import tune

from perk_ray.config import load_config
from perk_ray.errors import ConfigError
from perk_ray.tuning import Space, check_space, load_space, run_space
from perk_ray.tuning.space import base_config
from perk_ray.tuning.trial import DRIVER_MEMORY, max_concurrent_trials, trial_resources

ROOT = Path(__file__).resolve().parents[2]

BAD_SPACES = [
    (Space("typo", {"inner.trunction": [1, 2]}),
     r"inner.trunction=1 is refused in every combination: config field `inner.trunction`: unknown field"),
    (Space("empty", {"lora.rank": []}), r"`lora.rank` has an empty list of values"),
    (Space("t_above_k", {"inner.truncation": [3, 4]}, {"inner.steps": 2}),
     r"inner.truncation=3 is refused in every combination: .*inner.truncation=3 must be <= inner.steps=2"),
    (Space("bad_value", {"lora.rank": [8, 0]}), r"lora.rank=0 is refused in every combination: .*`lora.rank`"),
    (Space("nothing", {}), r"has no parameters"),
    (Space("continuous", {"inner.lr": tune.loguniform(1e-4, 1e-2)}), r"--search grid needs a list of values"),
]


@pytest.mark.parametrize("space,message", BAD_SPACES, ids=[space.name for space, _ in BAD_SPACES])
def test_bad_space_is_refused_before_any_trial(tmp_path, space, message):
    with pytest.raises(ConfigError, match=message):
        run_space(space, "tiny", [], tmp_path / "out", verbose=0)
    assert not (tmp_path / "out").exists()  # refused before the output, the data and Ray


@pytest.mark.skipif(importlib.util.find_spec("optuna") is not None, reason="optuna is installed")
def test_optuna_search_without_optuna_says_so(tmp_path):
    with pytest.raises(ConfigError, match=r"--search optuna needs the `optuna` package.*pip install optuna"):
        run_space(load_space(ROOT / "tune_spaces" / "ablate_lora_rank.py"), "tiny", [], tmp_path, search="optuna")


def test_grid_skips_only_the_combinations_the_config_refuses():
    space = Space("kt", {"inner.steps": [1, 2], "inner.truncation": [1, 2]})
    points, refused = check_space(space, base_config(space, "tiny", []), "grid")
    assert points == [{"inner.steps": 1, "inner.truncation": 1}, {"inner.steps": 2, "inner.truncation": 1},
                      {"inner.steps": 2, "inner.truncation": 2}]
    assert [point for point, _ in refused] == [{"inner.steps": 1, "inner.truncation": 2}]


def test_random_search_checks_the_bounds_of_distributions():
    space = Space("lr", {"inner.lr": tune.uniform(-1.0, 1.0)})
    with pytest.raises(ConfigError, match=r"inner.lr=-1.0 is refused in every combination: config field `inner.lr`"):
        check_space(space, base_config(space, "tiny", []), "random")


def test_yaml_space_and_override_of_a_parameter(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("name: mine\nfixed: {inner.steps: 2}\n"
                    "params:\n  lora.rank: [4, 8]\n  inner.lr: {loguniform: [1e-4, 1e-2]}\n")
    space = load_space(path)
    assert space.name == "mine" and space.variable == "lora.rank" and space.params["lora.rank"] == [4, 8]
    assert (space.params["inner.lr"].lower, space.params["inner.lr"].upper) == (1e-4, 1e-2)
    assert base_config(space, "tiny", ["inner.steps=3"]).inner.steps == 3  # overrides win over fixed fields
    with pytest.raises(ConfigError, match=r"`lora.rank` is a parameter of space 'mine'"):
        base_config(space, "tiny", ["lora.rank=16"])
    path.write_text("params:\n  lora.rank: 8\n")
    with pytest.raises(ConfigError, match=r"`lora.rank`: expected a list of values"):
        load_space(path)


def test_trial_resources_follow_the_config():
    tiny = load_config("tiny")
    assert trial_resources(tiny) == {"CPU": 1.0, "GPU": 0.0}
    assert max_concurrent_trials([tiny], {"CPU": 2.0}) == 2  # two small trials at once on this machine
    gpu = load_config("tiny", ["train.use_gpu=true", "train.gpus_per_worker=1", "train.cpus_per_worker=4"])
    assert trial_resources(gpu) == {"CPU": 4.0, "GPU": 1.0}
    assert max_concurrent_trials([gpu], {"CPU": 64.0, "GPU": 8.0}) == 8
    distributed = load_config("tiny", ["train.num_workers=2", "train.cpus_per_worker=0.5"])
    assert trial_resources(distributed) == {"memory": DRIVER_MEMORY}  # Ray Train reserves the workers itself
    assert max_concurrent_trials([tiny, distributed], {"CPU": 2.0}) == 1  # 2 x 0.5 + 1 CPU for Ray Data reads
    with pytest.raises(ConfigError, match=r"a trial needs 3 CPU \(train.num_workers x .*the Ray cluster has 2"):
        max_concurrent_trials([load_config("tiny", ["train.num_workers=2"])], {"CPU": 2.0})


def test_run_space_cli_refuses_a_bad_space_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("params:\n  inner.truncation: [5, 6]\n")
    done = subprocess.run([sys.executable, str(ROOT / "tune_spaces" / "run_space.py"), "--space", str(path),
                           "--preset", "tiny", "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "error: space 'bad': inner.truncation=5 is refused in every combination")
