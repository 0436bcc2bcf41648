"""Meta-training on Ray Train: a TorchTrainer whose workers run ``perk_ray.train.loop`` over Ray Data splits."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import ray.train
from ray.train import Checkpoint, CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from perk_ray.checkpoint import atomic_directory
from perk_ray.config import PerkConfig, build_config
from perk_ray.errors import ConfigError
from perk_ray.plan import estimate_memory, resolve_architecture
from perk_ray.plan.compute import check_batch_split
from perk_ray.plan.gpus import GIB, GPUS, evaluate
from perk_ray.plan.report import plan_report
from perk_ray.runtime import set_torch_threads
from perk_ray.train.loop import MetaTrainer, run_meta_training

RUN_NAME = "meta_train"
log = logging.getLogger(__name__)


def _rows(name: str) -> list[dict[str, Any]]:
    """A split read through Ray Data, in a deterministic order (by record id) on every worker."""
    ray.data.DataContext.get_current().enable_progress_bars = False
    shard = ray.train.get_dataset_shard(name)
    rows = [dict(row) for row in shard.iter_rows()] if shard is not None else []
    return sorted(rows, key=lambda r: str(r["id"]))


class _DropReportLines(logging.Filter):
    """Ray Train logs every ``ray.train.report`` call with its full metrics dict at INFO: our progress line says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Reporting training result")


def _quiet_report_log() -> None:
    """Drop those lines at the worker's root handlers (plain ``logging``, no private Ray module)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(_DropReportLines())


def train_worker(config: dict[str, Any]) -> None:
    """Ray Train worker: build the trainer, resume from Ray's latest checkpoint, run the loop."""
    _quiet_report_log()
    cfg = build_config(config["cfg"])
    context = ray.train.get_context()
    set_torch_threads(cfg.train.torch_threads or cfg.train.cpus_per_worker)
    device = "cpu"
    if cfg.train.use_gpu:
        import torch

        device = f"cuda:{torch.cuda.current_device()}"
    trainer = MetaTrainer(cfg, _rows("train"), _rows("dev"), device)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.restore(Path(directory))
    elif config.get("branch_from"):
        trainer.restore(Path(config["branch_from"]))
        log.info("branched from %s at step %d", config["branch_from"], trainer.step)
    scratch = Path(tempfile.mkdtemp(prefix="perk-ckpt-"))
    tracker = _tracker(cfg, config) if context.get_world_rank() == 0 else None

    def report(metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        if tracker is not None:
            tracker(metrics)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)

    metrics_file = Path(config["run_dir"]) / "metrics.jsonl" if context.get_world_rank() == 0 else None
    run_meta_training(trainer, report, scratch, log=log.info, metrics_file=metrics_file)


def _tracker(cfg: PerkConfig, config: dict[str, Any]):
    """MLflow or W&B logging through Ray's integrations, when ``train.tracking`` enables it."""
    if cfg.train.tracking == "mlflow":
        from ray.air.integrations.mlflow import setup_mlflow

        mlflow = setup_mlflow(config, experiment_name=cfg.train.tracking_project, rank_zero_only=True)
        return lambda metrics: mlflow.log_metrics(metrics, step=int(metrics["step"]))
    if cfg.train.tracking == "wandb":
        from ray.air.integrations.wandb import setup_wandb

        run = setup_wandb(config, project=cfg.train.tracking_project, rank_zero_only=True)
        return lambda metrics: run.log(metrics, step=int(metrics["step"]))
    return None


def check_resources(cfg: PerkConfig) -> None:
    """Fail fast, before any worker starts, when the global batch cannot be shared by the workers or the cluster
    cannot host them."""
    check_batch_split(cfg)
    available = ray.cluster_resources()
    train = cfg.train
    cpus = train.num_workers * train.cpus_per_worker
    if cpus > available.get("CPU", 0):
        raise ConfigError(f"train.num_workers={train.num_workers} x train.cpus_per_worker={train.cpus_per_worker} "
                          f"needs {cpus:g} CPUs; the Ray cluster has {available.get('CPU', 0):g}")
    if train.use_gpu:
        gpus = train.num_workers * max(train.gpus_per_worker, 1.0)
        if gpus > available.get("GPU", 0):
            raise ConfigError(f"train.use_gpu=true with train.num_workers={train.num_workers} needs {gpus:g} GPUs; "
                              f"the Ray cluster has {available.get('GPU', 0):g}")


def worker_group(cfg: PerkConfig) -> str:
    """What ``fit`` asks Ray for, and how the global batch is shared."""
    train = cfg.train
    gpu = f" + {train.gpus_per_worker or 1:g} GPU" if train.use_gpu else ""
    share = (f"each task's chunks split over the {train.num_workers} workers" if train.strategy == "cp"
             else f"{cfg.outer.batch_size // train.num_workers} task(s) per worker")
    return (f"Ray Train: {train.num_workers} worker(s) x ({train.cpus_per_worker:g} CPU{gpu}), backend "
            f"{'nccl' if train.use_gpu else 'gloo'}, strategy {train.strategy}; global batch {cfg.outer.batch_size} "
            f"tasks per meta-step, {share}.")


def dry_run(cfg: PerkConfig) -> str:
    """``fit``'s checks without a cluster or weights: the batch split, the worker group, and the planner's memory
    estimate, which on GPUs must fit some GPU kind at the configured strategy and world size. Returns the plan."""
    check_batch_split(cfg)
    arch = resolve_architecture(cfg.model)
    lines = [worker_group(cfg)]
    if cfg.train.use_gpu:
        fitting = [gpu.name for gpu in GPUS.values() if evaluate(cfg, arch, gpu).fits]
        if not fitting:
            raise ConfigError(f"train.use_gpu=true: the planner puts {estimate_memory(cfg, arch).total / GIB:.1f} GiB "
                              f"on each of the {cfg.train.num_workers} devices ({cfg.train.strategy}), more than any "
                              f"GPU kind holds; see python -m perk_ray.plan --preset {cfg.preset}")
        lines.append(f"Fits on: {', '.join(fitting)}.")
    return "\n".join([*lines, "", plan_report(cfg)])


@dataclass
class TrainOutcome:
    run_dir: Path
    final_checkpoint: Path
    best_checkpoint: Path
    metrics: dict[str, Any]


def check_branch_point(checkpoint: Path, run_dir: Path) -> Path:
    """A meta-checkpoint with a resume state to branch a new run from; refuse a run directory that has one already."""
    checkpoint = checkpoint.resolve()
    if not (checkpoint / "perk.json").is_file() or not (checkpoint / "train_state.pt").is_file():
        raise ConfigError(f"--branch-from {checkpoint}: not a meta-checkpoint with a resume state "
                          "(perk.json and train_state.pt)")
    if (run_dir / "ray" / RUN_NAME).exists():
        raise ConfigError(f"--branch-from: {run_dir} holds a run already (it would resume that run instead); "
                          "give a new --output")
    return checkpoint


def fit(cfg: PerkConfig, train_path: Path, dev_path: Path, run_dir: Path,
        branch_from: Path | None = None) -> TrainOutcome:
    """Run (or resume: same ``run_dir``) meta-training, from ``branch_from``'s meta-parameters, optimiser state and
    step when a fresh run is given one; copy the best and the final checkpoint into ``run_dir``."""
    check_resources(cfg)
    ray.data.DataContext.get_current().enable_progress_bars = False  # per-step progress lines are ours
    train = cfg.train
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"cfg": cfg.to_dict(), "run_dir": str(run_dir),
                           "branch_from": str(branch_from) if branch_from else None},
        scaling_config=ScalingConfig(
            num_workers=train.num_workers, use_gpu=train.use_gpu,
            resources_per_worker={"CPU": train.cpus_per_worker, **({"GPU": train.gpus_per_worker or 1}
                                                                   if train.use_gpu else {})},
        ),
        torch_config=TorchConfig(backend="nccl" if train.use_gpu else "gloo"),
        run_config=RunConfig(
            name=RUN_NAME, storage_path=str(run_dir / "ray"),
            checkpoint_config=CheckpointConfig(num_to_keep=train.keep_best, checkpoint_score_attribute="dev_accuracy",
                                               checkpoint_score_order="max"),
            failure_config=FailureConfig(max_failures=train.max_failures),
        ),
        # read here, before the workers reserve their CPUs: Ray Data lists the files in a task that needs a CPU,
        # which a worker group holding every CPU of the cluster would never leave free (the reads take none)
        datasets={name: ray.data.read_parquet(str(path), num_cpus=0).materialize()
                  for name, path in (("train", train_path), ("dev", dev_path))},
        dataset_config=DataConfig(datasets_to_split=[]),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    best = max(result.best_checkpoints, key=lambda pair: pair[1].get("dev_accuracy", float("-inf")))[0]
    outcome = TrainOutcome(run_dir, run_dir / "final", run_dir / "best", dict(result.metrics or {}))
    for source, target in ((result.checkpoint, outcome.final_checkpoint), (best, outcome.best_checkpoint)):
        with source.as_directory() as directory, atomic_directory(target) as tmp:
            shutil.copytree(directory, tmp, dirs_exist_ok=True)
    return outcome
