"""The Parquet splits a meta-training run reads: the configured paths, or splits generated into the run directory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from perk_ray.config import PerkConfig
from perk_ray.errors import InputError
from perk_ray.model import load_tokenizer

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")


def prepare_splits(cfg: PerkConfig, run_dir: Path, log: Callable[[str], None] = logger.info) -> dict[str, Path]:
    """Paths of train/dev(/test) Parquet files; generated from ``data.task`` when ``data.train_path`` is unset."""
    data = cfg.data
    if data.train_path:
        paths = {"train": Path(data.train_path), "dev": Path(data.dev_path or data.train_path)}
        if data.test_path:
            paths["test"] = Path(data.test_path)
        for name, path in paths.items():
            if not path.exists():
                raise InputError(f"data.{name}_path={str(path)!r}: no such file or directory")
        return paths
    out = run_dir / "data"
    paths = {name: out / f"{name}.parquet" for name in SPLITS}
    if all(p.exists() for p in paths.values()):
        return paths
    from perk_ray.data import generate, write_parquet
    from perk_ray.data.splits import make_splits

    counts = {"train": data.train_count, "dev": data.dev_count}
    total = sum(counts.values())
    test_lengths = list(data.test_lengths or data.lengths)
    log(f"generating {data.task} data: {counts} per length {data.lengths}, test {data.test_count} per length "
        f"{test_lengths} (seed {data.seed}) -> {out}")
    tokenizer = load_tokenizer(cfg.model.name)
    splits = make_splits(data.task, lengths=list(data.lengths), count=total, seed=data.seed, tokenizer=tokenizer,
                         fractions={k: v / total for k, v in counts.items()})
    taken = {r.source_id for records in splits.values() for r in records}
    splits["test"] = [r for length in test_lengths for r in generate(
        data.task, count=data.test_count, target_tokens=length, seed=data.seed, tokenizer=tokenizer, split="test",
        exclude_sources=taken)]
    out.mkdir(parents=True, exist_ok=True)
    for name, records in splits.items():
        write_parquet(records, paths[name])
    return paths
