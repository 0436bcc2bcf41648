"""Where a BabiLong qa1 question's facts fall among the context's chunks, and accuracy split by it.

A "Where is X?" question needs X's latest move. With one move of X in the context no order is needed; with several
in one chunk, their order is visible inside that chunk; with moves in different chunks it is carried only by the
chunks' doc ids, which meta-training shuffles. Splitting accuracy this way shows whether cross-chunk order is what
fails.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Sequence

from transformers import PreTrainedTokenizerBase

from perk_ray.data import TaskRecord
from perk_ray.data.babi import MOVE_VERBS
from perk_ray.evaluation.metrics import wilson_ci

LAYOUTS = ("one move", "moves in one chunk", "moves across chunks")
_QUESTION = re.compile(r"^Where is (\w+)\?$")


def _move_pattern(name: str) -> re.Pattern[str]:
    verbs = "|".join(re.escape(v) for v in sorted(MOVE_VERBS, key=len, reverse=True))
    return re.compile(rf"\b{re.escape(name)} (?:{verbs}) the \w+\.")


def fact_layout(record: TaskRecord, tokenizer: PreTrainedTokenizerBase, chunk_tokens: int) -> str | None:
    """One of LAYOUTS for a "Where is X?" record (None for other questions), chunked as ``build_chunks`` does:
    each segment tokenised after one space and cut every ``chunk_tokens`` tokens."""
    match = _QUESTION.match(record.question.strip())
    if match is None:
        return None
    pattern = _move_pattern(match.group(1))
    chunks = set()
    moves = 0
    for index, segment in enumerate(record.context):
        text = " " + segment.strip()
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        for found in pattern.finditer(text):
            token = next(i for i, (_, end) in enumerate(offsets) if end > found.start())
            chunks.add((index, token // chunk_tokens))
            moves += 1
    if moves <= 1:
        return LAYOUTS[0]
    return LAYOUTS[1] if len(chunks) == 1 else LAYOUTS[2]


def accuracy_by_layout(rows: Sequence[dict[str, Any]], records: Sequence[TaskRecord],
                       tokenizer: PreTrainedTokenizerBase, chunk_tokens: int,
                       metric: str = "babilong") -> list[dict[str, Any]]:
    """Per (method, length, layout): n, accuracy and its Wilson 95% interval."""
    by_id = {r.id: r for r in records}
    layouts: dict[str, str | None] = {}
    groups: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for row in rows:
        if row["id"] not in layouts:
            record = by_id.get(row["id"])
            layouts[row["id"]] = fact_layout(record, tokenizer, chunk_tokens) if record else None
        layout = layouts[row["id"]]
        if layout is not None and row.get(metric) is not None:
            groups[(row["method"], row["length"], layout)].append(float(row[metric]))
    table = []
    for (method, length, layout), values in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                                    LAYOUTS.index(kv[0][2]))):
        estimate = wilson_ci(values)
        table.append({"method": method, "length": length, "layout": layout, "n": len(values),
                      "accuracy": estimate.mean, "low": estimate.low, "high": estimate.high})
    return table
