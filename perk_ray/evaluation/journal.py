"""An evaluation's rows, appended as each record finishes, so that a killed evaluation resumes where it stopped.

The file is JSON lines: a header (what produced the rows: methods, checkpoint, settings), then one line per record
with that record's rows. A line cut short by a kill is ignored; a header that differs from this evaluation's is an
error, so rows of two different evaluations never mix.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perk_ray.data.schema import TaskRecord
from perk_ray.errors import InputError

Row = dict[str, Any]
JOURNAL_NAME = "rows.partial.jsonl"


def record_keys(records: Sequence[TaskRecord]) -> list[str]:
    """A key per record that survives a different ``--limit``: its id, numbered where ids repeat."""
    seen: Counter[str] = Counter()
    keys = []
    for record in records:
        keys.append(f"{record.id}#{seen[record.id]}")
        seen[record.id] += 1
    return keys


class RowJournal:
    """Rows per record key, read back from ``path`` and appended to it (flushed and fsynced per record)."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = Path(path)
        self.header = json.loads(json.dumps(header))  # as it reads back from JSON
        self.done: dict[str, list[Row]] = {}
        if self.path.exists():
            self._read()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._write_line({"header": self.header})

    def _read(self) -> None:
        text = self.path.read_text()
        lines = text.splitlines()
        try:
            found = json.loads(lines[0])["header"] if lines else None
        except (json.JSONDecodeError, KeyError, TypeError):
            found = None
        if found != self.header:
            differing = sorted(k for k in set(self.header) | set(found or {})
                               if (found or {}).get(k) != self.header.get(k))
            raise InputError(f"{self.path} holds rows of another evaluation (differs in: {', '.join(differing)}): "
                             "give another --output or delete that file")
        for line in lines[1:]:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a killed run
            self.done[entry["key"]] = entry["rows"]
        if lines and not text.endswith("\n"):
            with self.path.open("a") as handle:  # end the cut line so that the next record starts a new one
                handle.write("\n")

    def _write_line(self, entry: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def append(self, key: str, rows: list[Row]) -> None:
        self._write_line({"key": key, "rows": rows})
        self.done[key] = rows
