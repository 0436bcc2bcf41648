"""The icl-ft baseline's checkpoint: a PEFT adapter folder, the config and the base model's fingerprint.

    adapter/        PEFT LoRA folder (PeftModel.from_pretrained), the fine-tuned LoRA tensors
    config.yaml     the PerkConfig the baseline was trained with
    baseline.json   kind, format version, base-model fingerprint and free-form info (steps, loss, engine)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from perk_ray.checkpoint import CheckpointInfo, atomic_directory, read_adapter_tensors, write_adapter_folder
from perk_ray.config import LoraConfig, PerkConfig, config_from_file
from perk_ray.errors import CheckpointError
from perk_ray.model import BaseModel

KIND = "icl-ft"
FORMAT_VERSION = 1


def save_baseline(path: str | Path, base: BaseModel, params: dict[str, Tensor], cfg: PerkConfig,
                  info: dict[str, Any] | None = None) -> Path:
    """Write the fine-tuned LoRA tensors of the icl-ft baseline atomically."""
    with atomic_directory(path) as tmp:
        write_adapter_folder(tmp / "adapter", base, params)
        (tmp / "config.yaml").write_text(cfg.to_yaml())
        record = {"kind": KIND, "format_version": FORMAT_VERSION, "base_fingerprint": base.fingerprint,
                  "base_model": cfg.model.name, "info": info or {}}
        (tmp / "baseline.json").write_text(json.dumps(record, indent=2))
    return Path(path)


def read_baseline_info(path: str | Path) -> CheckpointInfo:
    """The config and identity of an icl-ft checkpoint, with a clear error for anything missing."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"icl-ft checkpoint {path} does not exist or is not a directory")
    if not (path / "baseline.json").exists():
        hint = " (it is a PERK meta-checkpoint: pass it as --checkpoint)" if (path / "perk.json").exists() else ""
        raise CheckpointError(f"icl-ft checkpoint {path} has no baseline.json{hint}")
    record = json.loads((path / "baseline.json").read_text())
    if record.get("kind") != KIND or record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"icl-ft checkpoint {path}: kind {record.get('kind')!r} format "
                              f"{record.get('format_version')} is not {KIND!r} format {FORMAT_VERSION}")
    if not (path / "config.yaml").exists():
        raise CheckpointError(f"icl-ft checkpoint {path} is incomplete: config.yaml is missing")
    return CheckpointInfo(config_from_file(path / "config.yaml"), record["base_fingerprint"], record.get("info", {}))


def check_baseline(path: str | Path, fingerprint: str, lora: LoraConfig) -> None:
    """Refuse an icl-ft checkpoint of another base model (``fingerprint``) or another LoRA configuration."""
    baseline = read_baseline_info(path)
    if baseline.base_fingerprint != fingerprint:
        raise CheckpointError(
            f"icl-ft checkpoint {path} was trained on base {baseline.config.model.name!r} "
            f"(fingerprint {baseline.base_fingerprint}), not on the evaluated base {fingerprint}"
        )
    theirs, ours = baseline.config.lora.model_dump(), lora.model_dump()
    differing = [f"lora.{k}={theirs[k]!r} (evaluated: {ours[k]!r})" for k in ours if theirs[k] != ours[k]]
    if differing:
        raise CheckpointError(f"icl-ft checkpoint {path} has another LoRA: {', '.join(differing)}; "
                              "train the baseline with the PERK checkpoint's LoRA settings")


def load_baseline_params(path: str | Path, base: BaseModel, lora: LoraConfig) -> dict[str, Tensor]:
    """The icl-ft LoRA tensors for ``base`` (carrying a LoRA configured as ``lora``), after ``check_baseline``."""
    check_baseline(path, base.fingerprint, lora)
    return read_adapter_tensors(Path(path) / "adapter", base)
