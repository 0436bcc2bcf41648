"""Rows (dicts) from local .parquet / .jsonl / .json files or a directory of them, with clear input errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from perk_ray.errors import InputError

SUFFIXES = (".parquet", ".jsonl", ".json")


def data_files(path: str | Path) -> list[Path]:
    """The data files at ``path``: the file itself, or the data files directly inside a directory (sorted)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or directory: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise InputError(f"{path}: no {', '.join(SUFFIXES)} files in this directory")
        return files
    if path.suffix not in SUFFIXES:
        raise InputError(f"{path}: unsupported file type {path.suffix!r}; use {', '.join(SUFFIXES)}")
    return [path]


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """All rows of the data files at ``path``; an empty result is an error."""
    rows: list[dict[str, Any]] = []
    for file in data_files(path):
        rows.extend(_read_file(file))
    if not rows:
        raise InputError(f"{path}: no records (the data is empty)")
    return rows


def _read_file(file: Path) -> list[dict[str, Any]]:
    if file.suffix == ".parquet":
        try:
            return pq.read_table(file).to_pylist()
        except OSError as exc:
            raise InputError(f"{file}: not a readable Parquet file ({exc})") from None
    text = file.read_text(encoding="utf-8")
    if file.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                raise InputError(f"{file}: invalid JSON at line {exc.lineno} ({exc.msg})") from None
        else:
            return _object_rows(file, data.get("data", data.get("Data")) if isinstance(data, dict) else data)
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{file}:{number}: invalid JSON line ({exc.msg})") from None
    return _object_rows(file, rows)


def _object_rows(file: Path, rows: Any) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise InputError(f"{file}: expected a list of JSON objects (or an object with a 'data' list)")
    return rows
