"""Where real-data rows come from: a local path in the published format, or the Hugging Face hub."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perk_ray.data.rows import read_rows
from perk_ray.errors import InputError

_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


def source_rows(source: str | Path, *, hub_config: str | None, hub_split: str, limit: int | None,
                local_path: Callable[[Path], Path] = lambda path: path) -> list[dict[str, Any]]:
    """Rows from a local file or directory (``local_path`` picks the file inside a published directory layout),
    else from the hub through ``datasets.load_dataset(source, hub_config, split=hub_split)``."""
    if limit is not None and limit < 1:
        raise InputError(f"limit={limit} must be >= 1 or None")
    path = Path(source).expanduser()
    if path.exists():
        rows = read_rows(local_path(path))
    elif _HUB_ID.fullmatch(str(source)):
        rows = _hub_rows(str(source), hub_config, hub_split if limit is None else f"{hub_split}[:{limit}]")
    else:
        raise InputError(f"no such file or directory: {source} (nor a Hugging Face dataset id like owner/name)")
    return rows if limit is None else rows[:limit]


def _hub_rows(repo: str, config: str | None, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        return list(datasets.load_dataset(repo, config, split=split))
    except Exception as exc:  # the hub raises many types: network, missing config, missing split
        raise InputError(f"could not load {repo} (config {config}, split {split}) from the Hugging Face hub: "
                         f"{exc.__class__.__name__}: {exc}") from None
