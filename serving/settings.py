"""The serving configuration (PerkConfig from the environment) and the engine it serves.

Environment: ``PERK_CONFIG`` (a YAML preset path) or ``PERK_PRESET`` (a preset name, default ``tiny``),
``PERK_CHECKPOINT`` (a meta-checkpoint directory, sets ``serve.checkpoint``), ``PERK_API_KEYS_FILE`` (sets
``serve.api_keys_file``) and ``PERK_OVERRIDES``
(space-separated ``section.field=value`` overrides, e.g. ``"serve.max_questions=4 serve.cache_dir=/tmp/a"``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from perk_ray.checkpoint import read_checkpoint_info
from perk_ray.config import PerkConfig, load_config
from perk_ray.engine import PerkEngine
from perk_ray.errors import ConfigError

CHECKPOINT_FILES = ("perk.json", "adapter/adapter_model.safetensors", "inner_lrs.safetensors",
                    "weighting.safetensors")


def load_serving_config(environ: Mapping[str, str] = os.environ) -> PerkConfig:
    """The PerkConfig the application serves, from ``PERK_*`` environment variables (see module docstring)."""
    preset = environ.get("PERK_CONFIG") or environ.get("PERK_PRESET") or "tiny"
    overrides = shlex.split(environ.get("PERK_OVERRIDES", ""))
    if environ.get("PERK_CHECKPOINT"):
        overrides.append(f"serve.checkpoint={environ['PERK_CHECKPOINT']}")
    if environ.get("PERK_API_KEYS_FILE"):
        overrides.append(f"serve.api_keys_file={environ['PERK_API_KEYS_FILE']}")
    return load_config(preset, overrides)


def engine_config(cfg: PerkConfig) -> PerkConfig:
    """The config the engine runs: the checkpoint's own (with ``cfg.serve``), or ``cfg`` without a checkpoint."""
    if cfg.serve.checkpoint is None:
        return cfg
    return read_checkpoint_info(cfg.serve.checkpoint).config.model_copy(update={"serve": cfg.serve})


def engine_device(gpu_ids: Sequence[object], cuda_available: bool) -> str:
    """Where a replica's engine runs: ``cuda`` when Ray gave the replica GPUs (``num_gpus`` in its
    ``ray_actor_options``; Ray limits CUDA_VISIBLE_DEVICES to them), else ``cpu``."""
    if not gpu_ids:
        return "cpu"
    if not cuda_available:
        raise ConfigError(f"the replica was given GPU(s) {list(gpu_ids)} (num_gpus in ray_actor_options) but torch "
                          "sees no CUDA device: install torch's CUDA build on the GPU nodes, or set num_gpus to 0")
    return "cuda"


def load_engine(cfg: PerkConfig, device: str = "cpu") -> PerkEngine:
    """The engine of a replica on ``device``: from ``serve.checkpoint``, or the preset's un-meta-trained
    initialisation."""
    if cfg.serve.checkpoint is None:
        return PerkEngine.from_config(cfg, device)
    return PerkEngine.from_checkpoint(cfg.serve.checkpoint, device)


def engine_digest(cfg: PerkConfig) -> str:
    """Identifies what an encoding depends on: the checkpoint's contents and the model, LoRA and inner config."""
    ecfg = engine_config(cfg)
    h = hashlib.sha256(json.dumps(ecfg.model_dump(mode="json", include={"model", "lora", "inner"}),
                                  sort_keys=True).encode())
    if cfg.serve.checkpoint is not None:
        root = Path(cfg.serve.checkpoint)
        for name in CHECKPOINT_FILES:
            if (root / name).exists():
                h.update(name.encode() + hashlib.sha256((root / name).read_bytes()).digest())
    return h.hexdigest()


def serving_note(cfg: PerkConfig) -> str | None:
    """What a client should know about the served model: set when no meta-checkpoint is configured."""
    if cfg.serve.checkpoint is not None:
        return None
    detail = "random weights: answers are gibberish" if cfg.model.name == "tiny" else "not meta-trained"
    return (f"no checkpoint configured (serve.checkpoint / PERK_CHECKPOINT): serving the {cfg.preset!r} preset "
            f"({detail})")
