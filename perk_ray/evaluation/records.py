"""Evaluation records: loading, the task label sets, length buckets, fact depth and a stratified ``--limit``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from perk_ray.data import TASKS, TaskRecord, answer_labels, read_records
from perk_ray.data.rows import SUFFIXES
from perk_ray.errors import InputError


def evaluation_path(path: str | Path) -> Path:
    """``path``, or the ``test`` split file of a ``jobs/make_data.py`` directory (one with train and test files)."""
    path = Path(path)
    if path.is_dir():
        stems = {p.stem: p for p in sorted(path.iterdir()) if p.suffix in SUFFIXES}
        if "train" in stems and "test" in stems:
            return stems["test"]
    return path


def load_records(path: str | Path, *, limit: int | None = None, task: str | None = None,
                 lengths: Sequence[int] | None = None) -> list[TaskRecord]:
    """Records of a Parquet/JSONL file or directory (a split directory: its test file); ``task`` names the task of
    records that have none; ``lengths`` keeps only those target lengths (before ``limit``)."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit {limit}: give at least 1 record")
    records = read_records(evaluation_path(path))
    if task is not None:
        for record in records:
            record.task = record.task or task
    if lengths:
        present = sorted({r.target_length for r in records if r.target_length is not None})
        missing = sorted(set(lengths) - set(present))
        if missing:
            raise InputError(f"--lengths {missing}: not in the data (its lengths: {present})")
        records = [r for r in records if r.target_length in set(lengths)]
    return limit_records(records, limit) if limit else records


def limit_records(records: list[TaskRecord], limit: int) -> list[TaskRecord]:
    """At most ``limit`` records, taken round robin over (task, length) groups in file order, so a small limit
    still covers every task and length."""
    groups: dict[tuple[str, int | None], list[TaskRecord]] = defaultdict(list)
    for record in records:
        groups[(record.task, record.target_length)].append(record)
    chosen: list[TaskRecord] = []
    for rank in range(max(len(g) for g in groups.values())):
        chosen.extend(g[rank] for g in groups.values() if rank < len(g))
    keep = {id(r) for r in chosen[:limit]}
    return [r for r in records if id(r) in keep]


def task_labels(task: str) -> list[str]:
    """The task's fixed answer labels for BabiLong scoring (empty for open-answer or unknown tasks)."""
    return answer_labels(task) if task in TASKS else []


def length_bucket(record: TaskRecord, tokens: int) -> int:
    """The record's nominal length: ``target_length``, else ``tokens`` (the model's count) rounded up to a power
    of two."""
    if record.target_length is not None:
        return record.target_length
    return 1 << max(0, (tokens - 1).bit_length())


def fact_depth(record: TaskRecord) -> float | None:
    """Mean position of the supporting facts as a fraction of the context (None when unknown)."""
    return sum(record.fact_depths) / len(record.fact_depths) if record.fact_depths else None
