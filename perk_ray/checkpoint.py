"""Meta-checkpoints and exported memories, written atomically (temporary directory, then rename).

A meta-checkpoint directory holds:
  adapter/                 PEFT adapter folder with the meta-learned LoRA initialisation (PeftModel.from_pretrained)
  inner_lrs.safetensors    learned per-tensor per-step inner learning rates (the rates, not their logs)
  weighting.safetensors    the token weighting model (absent when inner.weighting=none)
  config.yaml              the full PerkConfig
  perk.json                format version, base-model fingerprint and free-form info (step, metrics)
  train_state.pt           optional: optimiser, scheduler, step, data position and RNG for resuming
  README.md                the model card: base, task, lengths, K, T, rank, dev accuracy, how to load it
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from perk_ray.config import PerkConfig, config_from_file
from perk_ray.errors import CheckpointError
from perk_ray.meta import MetaParams
from perk_ray.model import BaseModel
from perk_ray.model_card import model_card

FORMAT_VERSION = 1
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path`` in one rename (old copy removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(path, old)
        os.rename(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _peft_key(name: str) -> str:
    return name.replace(".default.", ".")


def write_adapter_folder(directory: Path, base: BaseModel, params: dict[str, Tensor]) -> None:
    """A PEFT LoRA folder (adapter_config.json + lora_A/lora_B tensors) loadable by PeftModel.from_pretrained."""
    directory.mkdir(parents=True, exist_ok=True)
    base.model.peft_config["default"].save_pretrained(str(directory))
    tensors = {_peft_key(n): t.detach().to("cpu").contiguous() for n, t in params.items()}
    save_file(tensors, str(directory / ADAPTER_WEIGHTS), metadata={"format": "pt"})


def read_adapter_tensors(directory: Path, base: BaseModel) -> dict[str, Tensor]:
    """LoRA tensors of a PEFT folder, keyed by the live model's parameter names."""
    path = directory / ADAPTER_WEIGHTS
    if not path.exists():
        raise CheckpointError(f"{directory}: no {ADAPTER_WEIGHTS}; not a PEFT adapter folder")
    tensors = load_file(str(path))
    missing = [n for n in base.lora_names if _peft_key(n) not in tensors]
    if missing:
        raise CheckpointError(f"{directory}: adapter lacks {len(missing)} LoRA tensors of this model, "
                              f"e.g. {missing[0]}")
    return {n: tensors[_peft_key(n)].to(base.device) for n in base.lora_names}


def export_memory(path: str | Path, base: BaseModel, params: dict[str, Tensor]) -> Path:
    """Export an encoded context (adapted LoRA tensors) as a PEFT adapter folder, atomically."""
    with atomic_directory(path) as tmp:
        write_adapter_folder(tmp, base, params)
    return Path(path)


def save_meta_checkpoint(path: str | Path, base: BaseModel, meta: MetaParams, cfg: PerkConfig,
                         info: dict[str, Any] | None = None, train_state: dict[str, Any] | None = None) -> Path:
    """Write a meta-checkpoint directory atomically; an existing one at ``path`` is replaced whole."""
    with atomic_directory(path) as tmp:
        write_adapter_folder(tmp / "adapter", base, meta.init_params())
        save_file({k: v.detach().exp().cpu().contiguous() for k, v in meta.log_inner_lrs.items()},
                  str(tmp / "inner_lrs.safetensors"))
        if meta.weighting is not None:
            save_file({k: v.detach().cpu().contiguous() for k, v in meta.weighting.state_dict().items()},
                      str(tmp / "weighting.safetensors"))
        (tmp / "config.yaml").write_text(cfg.to_yaml())
        record = {"format_version": FORMAT_VERSION, "base_fingerprint": base.fingerprint,
                  "base_model": cfg.model.name, "info": info or {}}
        (tmp / "perk.json").write_text(json.dumps(record, indent=2))
        (tmp / "README.md").write_text(model_card(cfg, base.model.peft_config["default"].base_model_name_or_path,
                                                  info or {}))
        if train_state is not None:
            torch.save(train_state, tmp / "train_state.pt")
    return Path(path)


@dataclass
class CheckpointInfo:
    config: PerkConfig
    base_fingerprint: str
    info: dict[str, Any] = field(default_factory=dict)


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """The config and identity of a meta-checkpoint, with a clear error for anything missing."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path} does not exist or is not a directory")
    for name in ("perk.json", "config.yaml", "adapter", "inner_lrs.safetensors"):
        if not (path / name).exists():
            raise CheckpointError(f"checkpoint {path} is incomplete: {name} is missing")
    record = json.loads((path / "perk.json").read_text())
    if record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format_version {record.get('format_version')} "
                              f"is not the supported {FORMAT_VERSION}")
    return CheckpointInfo(config_from_file(path / "config.yaml"), record["base_fingerprint"], record.get("info", {}))


def load_meta_params(path: str | Path, base: BaseModel, meta: MetaParams) -> CheckpointInfo:
    """Load a meta-checkpoint into ``meta`` (built for ``base``), refusing one of another base model."""
    path = Path(path)
    ckpt = read_checkpoint_info(path)
    if ckpt.base_fingerprint != base.fingerprint:
        raise CheckpointError(
            f"checkpoint {path} was meta-trained on base {ckpt.config.model.name!r} "
            f"(fingerprint {ckpt.base_fingerprint}), not on the loaded base {base.fingerprint}"
        )
    init = read_adapter_tensors(path / "adapter", base)
    lrs = load_file(str(path / "inner_lrs.safetensors"))
    with torch.no_grad():
        for name in meta.names:
            key = name.replace(".", "__")
            meta.lora_init[key].copy_(init[name])
            if lrs[key].shape != meta.log_inner_lrs[key].shape:
                raise CheckpointError(f"checkpoint {path}: inner_lrs has {lrs[key].shape[0]} steps, "
                                      f"config inner.steps={meta.log_inner_lrs[key].shape[0]}")
            meta.log_inner_lrs[key].copy_(lrs[key].log())
    if meta.weighting is not None:
        meta.weighting.load_state_dict(load_file(str(path / "weighting.safetensors")))
    return ckpt


def load_train_state(path: str | Path) -> dict[str, Any] | None:
    """The resume state (tensors and plain types only: ``weights_only=True`` never runs code from the file)."""
    state_path = Path(path) / "train_state.pt"
    return torch.load(state_path, weights_only=True) if state_path.exists() else None
