"""HotpotQA, distractor setting: the ten paragraphs become segments, ``supporting_facts`` give support and depths.

Reads both published layouts: the original JSON (``_id``, ``context`` as [title, sentences] pairs,
``supporting_facts`` as [title, sentence index] pairs) and the Hugging Face one (``id``, ``context`` as
{title, sentences}, ``supporting_facts`` as {title, sent_id}).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from perk_ray.data.generation import draft_record
from perk_ray.data.loaders.common import source_rows
from perk_ray.data.schema import SEGMENT_SEPARATOR, TaskRecord
from perk_ray.data.tasks import Draft
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

HOTPOTQA_HUB = "hotpotqa/hotpot_qa"


def load_hotpotqa(source: str | Path = HOTPOTQA_HUB, *, split: str = "validation", tokenizer: Any = None,
                  limit: int | None = None) -> list[TaskRecord]:
    """HotpotQA records (task ``hotpotqa``, ``qtype`` bridge / comparison). Each segment is ``<title>: <text>``."""
    rows = source_rows(source, hub_config="distractor", hub_split=split, limit=limit)
    counter = TokenCounter(tokenizer)
    records = []
    for index, row in enumerate(rows):
        missing = [c for c in ("question", "answer", "context", "supporting_facts") if c not in row]
        if missing:
            raise InputError(f"{source}: HotpotQA row {index} lacks column {missing[0]!r} (columns: {sorted(row)})")
        paragraphs = _pairs(row["context"], "sentences")
        segments, sentence_starts = _segments(paragraphs)
        support, offsets = [], []
        for title, sentence_id in _pairs(row["supporting_facts"], "sent_id"):
            where = next((i for i, (t, _) in enumerate(paragraphs) if t == title), None)
            if where is not None and 0 <= sentence_id < len(paragraphs[where][1]):
                support.append(paragraphs[where][1][sentence_id].strip())
                offsets.append(sentence_starts[where][sentence_id])
        draft = Draft(segments, support, offsets, row["question"], [row["answer"]],
                      sum(len(sentences) for _, sentences in paragraphs), qtype=row.get("type") or "")
        row_id = str(row.get("id") or row.get("_id") or index)
        records.append(draft_record(draft, f"hotpotqa-{row_id}", "hotpotqa", None, split, row_id, counter))
    return records


def _pairs(value: Any, second: str) -> list[tuple[Any, Any]]:
    """(title, x) pairs from either [[title, x], ...] or {"title": [...], second: [...]}."""
    if isinstance(value, dict):
        return list(zip(value["title"], value[second]))
    return [(pair[0], pair[1]) for pair in value]


def _segments(paragraphs: list[tuple[str, list[str]]]) -> tuple[list[str], list[list[int]]]:
    """Segments ``<title>: <sentences>`` and each sentence's start (leading space excluded) in the joined context."""
    segments, starts, position = [], [], 0
    for title, sentences in paragraphs:
        text, sentence_starts = f"{title}: ", []
        for j, sentence in enumerate(sentences):
            if j and not sentence[:1].isspace():
                text += " "
            sentence_starts.append(position + len(text) + len(sentence) - len(sentence.lstrip()))
            text += sentence
        segments.append(text)
        starts.append(sentence_starts)
        position += len(text) + len(SEGMENT_SEPARATOR)
    return segments, starts
