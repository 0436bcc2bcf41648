"""BabiLong (RMT-team/babilong): rows with ``input``, ``question``, ``target``, one file per task and length."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from perk_ray.data.generation import draft_record
from perk_ray.data.loaders.common import source_rows
from perk_ray.data.parse import parse_length
from perk_ray.data.rows import SUFFIXES
from perk_ray.data.schema import TaskRecord
from perk_ray.data.tasks import Draft
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

BABILONG_HUB = "RMT-team/babilong"
_TASK = re.compile(r"qa\d{1,2}")
_LENGTH = re.compile(r"\d+k")


def load_babilong(source: str | Path = BABILONG_HUB, *, task: str = "qa1", length: str = "1k", tokenizer: Any = None,
                  split: str = "test", limit: int | None = None) -> list[TaskRecord]:
    """BabiLong ``task`` (qa1...) at ``length`` (0k, 1k, 2k, ... 128k) as records of task ``babilong-<task>``.

    ``source`` is a published file, a directory holding the published layout (``<length>/<task>-*.parquet``,
    ``<task>/<length>.json``, ``data/<task>/<length>.json``...), or a hub id (config ``<length>``, split ``<task>``).
    The whole input is one segment; BabiLong publishes no supporting facts, so ``support`` is empty.
    """
    if not _TASK.fullmatch(task) or not _LENGTH.fullmatch(length):
        raise InputError(f"BabiLong task {task!r} / length {length!r}: use e.g. task='qa1', length='1k'")
    rows = source_rows(source, hub_config=length, hub_split=task, limit=limit,
                       local_path=lambda path: _find_file(path, task, length))
    target = 0 if length == "0k" else parse_length(length)
    counter = TokenCounter(tokenizer)
    records = []
    for index, row in enumerate(rows):
        missing = [c for c in ("input", "question", "target") if c not in row]
        if missing:
            raise InputError(f"{source}: BabiLong row {index} lacks column {missing[0]!r} (columns: {sorted(row)})")
        draft = Draft([row["input"]], [], [], row["question"], [str(row["target"])], 0)
        source_id = f"babilong-{hashlib.sha1(row['input'].encode()).hexdigest()[:16]}"
        records.append(draft_record(draft, f"babilong-{task}-{length}-{index:05d}", f"babilong-{task}", target,
                                    split, source_id, counter))
    return records


def _find_file(path: Path, task: str, length: str) -> Path:
    """The data file under ``path`` whose relative path names both the task and the length."""
    if path.is_file():
        return path
    matches = [
        p for p in sorted(path.rglob("*")) if p.is_file() and p.suffix in SUFFIXES
        and {task, length} <= set(re.split(r"[/\\._-]", str(p.relative_to(path))))
    ]
    if len(matches) != 1:
        found = "none" if not matches else ", ".join(str(m) for m in matches)
        raise InputError(f"{path}: expected one BabiLong file for {task} at {length}, found {found}")
    return matches[0]
