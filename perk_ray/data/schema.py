"""The one record schema of every task: a typed dataclass and its Arrow schema."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import pyarrow as pa

# Segments are joined with this separator wherever one text of the whole context is needed
# (fact depths, context_chars, context_tokens).
SEGMENT_SEPARATOR = "\n"


@dataclass
class TaskRecord:
    """One long-context question: the context as segments, the question and its accepted answers.

    Metadata: ``support`` are the supporting fact sentences (empty when unknown) and ``fact_depths`` their start
    positions as a fraction of the characters of the joined context; ``num_facts`` counts every task fact hidden in
    the context (supporting or not; 0 when unknown); ``target_length`` is the nominal length bucket in tokens (None
    when the data has none); ``source_id`` names the story or record set, so splits can be checked for leakage;
    ``qtype`` is the question type where a task has several (student records: recall, relation, aggregation).
    """

    id: str
    task: str
    context: list[str]
    question: str
    answer: list[str]
    support: list[str] = field(default_factory=list)
    context_tokens: int = 0
    context_chars: int = 0
    fact_depths: list[float] = field(default_factory=list)
    num_facts: int = 0
    target_length: int | None = None
    split: str = ""
    source_id: str = ""
    qtype: str = ""

    def joined_context(self) -> str:
        """The context as one text (segments joined by ``SEGMENT_SEPARATOR``)."""
        return SEGMENT_SEPARATOR.join(self.context)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> TaskRecord:
        """A record from a row with the schema's columns (lists may be any sequence, e.g. numpy arrays)."""
        values = {name: row[name] for name in FIELD_NAMES if name in row}
        for name in LIST_FIELDS:
            if name in values:
                values[name] = list(values[name])
        for name in INT_FIELDS:
            if name in values and values[name] is not None:
                values[name] = int(values[name])
        if "fact_depths" in values:
            values["fact_depths"] = [float(d) for d in values["fact_depths"]]
        return cls(**values)


FIELD_NAMES = tuple(f.name for f in fields(TaskRecord))
REQUIRED_FIELDS = ("context", "question", "answer")
LIST_FIELDS = ("context", "answer", "support", "fact_depths")
INT_FIELDS = ("context_tokens", "context_chars", "num_facts", "target_length")

ARROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("task", pa.string(), nullable=False),
        pa.field("context", pa.list_(pa.string()), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("answer", pa.list_(pa.string()), nullable=False),
        pa.field("support", pa.list_(pa.string()), nullable=False),
        pa.field("context_tokens", pa.int64(), nullable=False),
        pa.field("context_chars", pa.int64(), nullable=False),
        pa.field("fact_depths", pa.list_(pa.float64()), nullable=False),
        pa.field("num_facts", pa.int64(), nullable=False),
        pa.field("target_length", pa.int64(), nullable=True),
        pa.field("split", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
        pa.field("qtype", pa.string(), nullable=False),
    ]
)

def records_to_table(records: list[TaskRecord]) -> pa.Table:
    """An Arrow table with ``ARROW_SCHEMA`` (column order fixed, so files are byte-identical for equal records)."""
    return pa.Table.from_pylist([r.to_dict() for r in records], schema=ARROW_SCHEMA)
