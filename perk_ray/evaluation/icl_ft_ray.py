"""The icl-ft fine-tune on Ray Train: a TorchTrainer (gloo on CPU, nccl on GPU) whose workers run
``train_icl_ft`` on the training split; rank 0 reports the baseline checkpoint.

The records go to the workers through the object store (one ``ray.put``), not a Ray Dataset: with every CPU held
by a training worker, Ray Data's read tasks would never be scheduled.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import ray
import ray.train
from ray.train import Checkpoint, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig, TorchTrainer

from perk_ray.checkpoint import atomic_directory
from perk_ray.config import PerkConfig, build_config
from perk_ray.data.io import read_records
from perk_ray.data.schema import TaskRecord
from perk_ray.data.rows import SUFFIXES
from perk_ray.errors import ConfigError, InputError
from perk_ray.evaluation.baseline_checkpoint import save_baseline
from perk_ray.evaluation.icl_ft import Engine, train_icl_ft


def train_split(path: str | Path) -> Path:
    """The training file of ``path``: a data file itself, or ``train.parquet`` / ``train.jsonl`` in a directory."""
    path = Path(path)
    if path.is_dir():
        found = [path / f"train{suffix}" for suffix in SUFFIXES if (path / f"train{suffix}").exists()]
        if not found:
            raise InputError(f"{path}: no train.parquet / train.jsonl in this directory "
                             "(jobs/make_data.py writes them)")
        return found[0]
    if not path.exists():
        raise InputError(f"no such file or directory: {path}")
    return path


def _worker(config: dict[str, Any]) -> None:
    cfg = build_config(config["cfg"])
    records = [TaskRecord.from_dict(row) for row in ray.get(config["records"])]
    device = "cpu"
    if cfg.train.use_gpu:
        import torch

        device = f"cuda:{torch.cuda.current_device()}"
    result = train_icl_ft(cfg, records, engine=config["engine"], device=device)
    metrics = {k: v for k, v in result.info.items() if isinstance(v, (int, float))}
    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report(metrics)
        return
    with tempfile.TemporaryDirectory(prefix="icl-ft-") as tmp:
        path = save_baseline(Path(tmp) / "icl-ft", result.base, result.params, cfg, result.info)
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(path)))


def fit_icl_ft(cfg: PerkConfig, train_path: str | Path, output: str | Path, *, engine: Engine = "torch",
               storage_path: str | Path | None = None) -> Path:
    """Fine-tune the icl-ft baseline with ``cfg.train.num_workers`` Ray Train workers; write its checkpoint to
    ``output`` (atomically). ``ray.init`` must have run; ``storage_path`` must be shared on multi-node clusters."""
    train = cfg.train
    cpus = ray.cluster_resources().get("CPU", 0)
    if train.num_workers * train.cpus_per_worker > cpus:
        raise ConfigError(f"train.num_workers={train.num_workers} x train.cpus_per_worker={train.cpus_per_worker} "
                          f"needs more CPUs than the Ray cluster's {cpus:g}")
    records = sorted(read_records(train_split(train_path)), key=lambda r: r.id)
    storage = Path(storage_path or tempfile.mkdtemp(prefix="icl-ft-ray-"))
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"cfg": cfg.to_dict(), "engine": engine,
                           "records": ray.put([r.to_dict() for r in records])},
        scaling_config=ScalingConfig(num_workers=train.num_workers, use_gpu=train.use_gpu,
                                     resources_per_worker={"CPU": train.cpus_per_worker,
                                                           **({"GPU": train.gpus_per_worker or 1}
                                                              if train.use_gpu else {})}),
        torch_config=TorchConfig(backend="nccl" if train.use_gpu else "gloo"),
        run_config=RunConfig(name="icl_ft", storage_path=str(storage)),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    with result.checkpoint.as_directory() as directory, atomic_directory(output) as tmp:
        shutil.copytree(directory, tmp, dirs_exist_ok=True)
    if storage_path is None:
        shutil.rmtree(storage, ignore_errors=True)
    return Path(output)
