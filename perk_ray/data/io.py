"""Records <-> Parquet / JSONL files, Hugging Face ``datasets.Dataset`` and Ray Datasets."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from perk_ray.data.rows import data_files, read_rows
from perk_ray.data.schema import FIELD_NAMES, REQUIRED_FIELDS, TaskRecord, records_to_table
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

BABILONG_COLUMNS = ("input", "question", "target")


def write_parquet(records: Iterable[TaskRecord], path: str | Path) -> Path:
    """Write records as one Parquet file (byte-identical for identical records)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(records_to_table(list(records)), path)
    return path


def write_jsonl(records: Iterable[TaskRecord], path: str | Path) -> Path:
    """Write records as JSON lines with the schema's fields."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
    return path


def read_records(path: str | Path) -> list[TaskRecord]:
    """Records from a .parquet / .jsonl / .json file or a directory of them; rows with BabiLong's columns
    (``input``, ``question``, ``target``) are mapped to the schema; missing metadata is derived."""
    return records_from_rows(read_rows(path), source=str(path))


def records_from_rows(rows: Iterable[Mapping[str, Any]], source: str = "rows") -> list[TaskRecord]:
    """Records from dict rows (e.g. a ``datasets.Dataset`` or ``ray.data.Dataset.take_all()``)."""
    records = [_record(dict(row), index, source) for index, row in enumerate(rows)]
    if not records:
        raise InputError(f"{source}: no records (the data is empty)")
    return records


def to_hf_dataset(records: Iterable[TaskRecord]) -> Any:
    """A ``datasets.Dataset`` with the schema's columns."""
    import datasets

    return datasets.Dataset(records_to_table(list(records)))


def to_ray_dataset(source: str | Path | Iterable[TaskRecord]) -> Any:
    """A Ray Dataset from a Parquet file / directory (``ray.data.read_parquet``), other record files, or records."""
    import ray.data

    if isinstance(source, (str, Path)):
        files = data_files(source)
        if all(f.suffix == ".parquet" for f in files):
            return ray.data.read_parquet([str(f) for f in files])
        source = read_records(source)
    return ray.data.from_arrow(records_to_table(list(source)))


def _record(row: dict[str, Any], index: int, source: str) -> TaskRecord:
    if "context" not in row and all(c in row for c in BABILONG_COLUMNS):
        row = {**row, "context": row["input"], "answer": row["target"]}
    where = f"{source}: row {index}"
    for column in REQUIRED_FIELDS:
        if column not in row:
            raise InputError(f"{where}: missing column {column!r} (columns: {', '.join(sorted(row)) or 'none'}; "
                             f"need {', '.join(REQUIRED_FIELDS)}, or BabiLong's {', '.join(BABILONG_COLUMNS)})")
    row["context"] = _strings(row["context"], "context", where)
    row["answer"] = _strings(row["answer"], "answer", where)
    row["support"] = _strings(row.get("support") or [], "support", where, allow_empty=True)
    if not isinstance(row["question"], str) or not row["question"].strip():
        raise InputError(f"{where}: column 'question' is empty or not a string")
    fields = {name: row[name] for name in FIELD_NAMES if row.get(name) is not None}
    fields.setdefault("id", f"{Path(source).stem}-{index}")
    fields.setdefault("task", "")
    try:
        record = TaskRecord.from_dict(fields)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: a metadata column has the wrong type ({exc})") from None
    joined = record.joined_context()
    record.context_chars = len(joined)
    if "context_tokens" not in fields:
        record.context_tokens = TokenCounter(None).count(joined)
    if "fact_depths" not in fields:
        starts = [joined.find(fact) for fact in record.support]
        record.fact_depths = [round(s / len(joined), 6) for s in starts] if min(starts, default=0) >= 0 else []
    record.source_id = record.source_id or record.id
    return record


def _strings(value: Any, column: str, where: str, allow_empty: bool = False) -> list[str]:
    """A string or a sequence of strings as a list of strings; empty is an error unless allowed."""
    items = [value] if isinstance(value, str) else list(value) if hasattr(value, "__iter__") else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise InputError(f"{where}: column {column!r} must be a string or a list of strings")
    if not allow_empty and not any(item.strip() for item in items):
        raise InputError(f"{where}: column {column!r} is empty")
    return items
