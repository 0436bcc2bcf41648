"""Train/dev/test splits that share no story or record set, at one or more lengths."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from perk_ray.data.generation import generate
from perk_ray.data.schema import TaskRecord
from perk_ray.errors import InputError

DEFAULT_FRACTIONS = {"train": 0.8, "dev": 0.1, "test": 0.1}


def check_fractions(fractions: Mapping[str, float]) -> None:
    if not fractions:
        raise InputError("split fractions are empty; e.g. train=0.8,dev=0.1,test=0.1")
    for name, fraction in fractions.items():
        if not name or not 0.0 < fraction <= 1.0:
            raise InputError(f"split {name!r} has fraction {fraction}; fractions must be in (0, 1]")
    if not math.isclose(sum(fractions.values()), 1.0, abs_tol=1e-6):
        raise InputError(f"split fractions sum to {sum(fractions.values()):g}, not 1 "
                         f"({', '.join(f'{k}={v:g}' for k, v in fractions.items())})")


def split_counts(count: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Records per split, summing to ``count`` (largest remainders get the leftovers, earlier splits first)."""
    exact = {name: count * fraction for name, fraction in fractions.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: counts[name] - exact[name])
    for name in by_remainder[: count - sum(counts.values())]:
        counts[name] += 1
    return counts


def make_splits(task: str, *, lengths: list[int], count: int, seed: int, tokenizer: Any,
                fractions: Mapping[str, float] = DEFAULT_FRACTIONS, **task_kwargs: Any) -> dict[str, list[TaskRecord]]:
    """``count`` records per length, divided by ``fractions``; each split draws its own worlds and skips every
    world (``source_id``) already drawn for another split, at any length."""
    check_fractions(fractions)
    if not lengths:
        raise InputError("lengths is empty; give at least one target length in tokens")
    if not isinstance(count, int) or count < 1:
        raise InputError(f"count={count!r} must be an integer >= 1")
    counts = split_counts(count, fractions)
    splits: dict[str, list[TaskRecord]] = {name: [] for name in fractions}
    taken: set[str] = set()
    for name in fractions:
        for length in lengths:
            if counts[name]:
                splits[name] += generate(task, count=counts[name], target_tokens=length, seed=seed,
                                         tokenizer=tokenizer, split=name, exclude_sources=taken, **task_kwargs)
        taken |= {record.source_id for record in splits[name]}
    return splits
