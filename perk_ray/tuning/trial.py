"""One Tune trial and what it needs: resources from the config, the data splits and (on ``tiny``) a briefly
pre-trained base, prepared once in the driver."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ray import tune

from perk_ray.checkpoint import atomic_directory
from perk_ray.config import PerkConfig, build_config
from perk_ray.errors import ConfigError
from perk_ray.runtime import set_torch_threads
from perk_ray.tuning.space import Space, trial_config

METRIC, MODE = "dev_accuracy", "max"
DRIVER_MEMORY = 64 * 2**20  # what a distributed trial's driver reserves: Ray Train V2 reserves its workers itself

Log = Callable[[str], None]


def trial_resources(cfg: PerkConfig) -> dict[str, float]:
    """What Tune reserves for a trial: its worker's CPUs and GPUs. A distributed trial only runs the Ray Train
    driver (V2 reserves the workers' placement group itself), so it holds a token of memory and no CPU."""
    train = cfg.train
    if train.num_workers > 1:
        return {"memory": DRIVER_MEMORY}
    return {"CPU": train.cpus_per_worker, "GPU": (train.gpus_per_worker or 1.0) if train.use_gpu else 0.0}


def trial_demand(cfg: PerkConfig) -> dict[str, float]:
    """Everything a running trial occupies. A distributed trial adds one CPU to its workers' for the Ray Data
    tasks that read its splits (with every CPU held by Train workers those reads never run)."""
    train = cfg.train
    gpus = (train.gpus_per_worker or 1.0) if train.use_gpu else 0.0
    data_cpus = 1.0 if train.num_workers > 1 else 0.0
    return {"CPU": train.num_workers * train.cpus_per_worker + data_cpus, "GPU": train.num_workers * gpus}


def max_concurrent_trials(configs: Sequence[PerkConfig], cluster: Mapping[str, float]) -> int:
    """How many of the most demanding trials fit in the cluster at once (ConfigError when not even one does)."""
    limits = []
    for kind in ("CPU", "GPU"):
        need = max(trial_demand(cfg)[kind] for cfg in configs)
        if need > 0:
            have = cluster.get(kind, 0.0)
            if need > have:
                raise ConfigError(f"a trial needs {need:g} {kind} (train.num_workers x "
                                  f"train.{kind.lower()}s_per_worker; a distributed trial adds 1 CPU for its data "
                                  f"reads); the Ray cluster has {have:g}")
            limits.append(int(have // need))
    return min(limits)


def data_key(cfg: PerkConfig) -> str:
    return hashlib.sha1(json.dumps(cfg.data.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:10]


def prepare_data(configs: Sequence[PerkConfig], output: Path, log: Log) -> dict[str, dict[str, str]]:
    """Splits for each distinct ``data`` section, keyed by ``data_key`` (generated once, kept for resuming)."""
    from perk_ray.train.data_prep import prepare_splits

    splits: dict[str, dict[str, str]] = {}
    for cfg in configs:
        key = data_key(cfg)
        if key not in splits:
            paths = prepare_splits(cfg, output / "splits" / key, log=log)
            splits[key] = {name: str(path.resolve()) for name, path in paths.items()}
    return splits


def pretrain_base(space: Space, base: PerkConfig, train_path: str, target: Path, steps: int, log: Log) -> PerkConfig:
    """On ``tiny`` (random weights cannot learn to answer) pre-train the base once on the train split's text into
    ``target`` and point every trial at it. Other presets, a given ``model.pretrained_dir`` or a space over
    ``model.*`` keep theirs."""
    if base.model.name != "tiny" or base.model.pretrained_dir or steps == 0:
        return base
    if any(key.startswith("model.") for key in space.params):
        log("note: the space varies model.* fields, so the tiny base is not pre-trained (accuracy stays near chance)")
        return base
    from perk_ray.pretrain import pretrain_tiny_base, task_text

    if not (target / "config.json").exists():
        log(f"pre-training the tiny base ({steps} steps) -> {target}")
        with atomic_directory(target) as tmp:
            pretrain_tiny_base(base.model, task_text(_records(train_path)), tmp, steps=steps, batch_size=8,
                               seq_len=96, log=log)
    return trial_config(base, {"model.pretrained_dir": str(target.resolve())})


def _records(path: str) -> list[dict[str, Any]]:
    from perk_ray.data import read_records

    return [asdict(record) for record in read_records(path)]


def run_trial(config: dict[str, Any], base: dict[str, Any], splits: dict[str, dict[str, str]], output: str) -> None:
    """One Tune trial: meta-train the point's configuration through the library; report every meta-step (Tune
    wants the metric in every result: the last measured dev accuracy is carried forward, NaN before the first)."""
    cfg = trial_config(build_config(base), config["point"])
    paths = splits[data_key(cfg)]
    if cfg.train.num_workers > 1:
        _distributed_trial(cfg, paths, Path(output) / "trials" / tune.get_context().get_trial_id())
    else:
        _local_trial(cfg, paths)


def _local_trial(cfg: PerkConfig, paths: dict[str, str]) -> None:
    """MetaTrainer in the trial's process; Tune checkpoints are meta-checkpoints, so a resumed trial continues."""
    from perk_ray.train.loop import MetaTrainer, run_meta_training

    set_torch_threads(cfg.train.torch_threads or cfg.train.cpus_per_worker)
    trainer = MetaTrainer(cfg, _records(paths["train"]), _records(paths["dev"]),
                          "cuda" if cfg.train.use_gpu else "cpu")
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.restore(Path(directory))

    last = {METRIC: math.nan}

    def report(metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        last.update({key: metrics[key] for key in (METRIC,) if key in metrics})
        saved = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report({**metrics, **last, "total_steps": trainer.total_steps}, checkpoint=saved)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)

    scratch = Path(tempfile.mkdtemp(prefix="perk-tune-"))
    try:
        run_meta_training(trainer, report, scratch, log=lambda _: None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _distributed_trial(cfg: PerkConfig, paths: dict[str, str], run_dir: Path) -> None:
    """A Ray Train run inside the trial (resumes from its own checkpoints); its metrics are reported once it ends."""
    from perk_ray.train.ray_trainer import fit

    fit(cfg, Path(paths["train"]), Path(paths["dev"]), run_dir)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    by_step = {metrics["step"]: metrics for metrics in map(json.loads, lines)}  # a resumed run replays steps
    dev = math.nan
    for step in sorted(by_step):
        dev = by_step[step].get(METRIC, dev)
        tune.report({**by_step[step], METRIC: dev, "total_steps": max(by_step)})
