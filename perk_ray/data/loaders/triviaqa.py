"""TriviaQA, reading comprehension (Hugging Face layout): evidence documents become the context segments."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from perk_ray.data.generation import draft_record
from perk_ray.data.loaders.common import source_rows
from perk_ray.data.schema import TaskRecord
from perk_ray.data.tasks import Draft
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

TRIVIAQA_HUB = "mandarjoshi/trivia_qa"
log = logging.getLogger(__name__)


def load_triviaqa(source: str | Path = TRIVIAQA_HUB, *, split: str = "validation", tokenizer: Any = None,
                  limit: int | None = None, search_results: bool = True) -> list[TaskRecord]:
    """TriviaQA records (task ``triviaqa``): ``entity_pages.wiki_context`` documents, then (with
    ``search_results``) ``search_results.search_context`` ones, one segment each; accepted answers are
    ``answer.value``, ``aliases`` and ``normalized_aliases``. No supporting facts are published.

    Rows without evidence or without answers (the test split hides them) are skipped with a warning.
    """
    rows = source_rows(source, hub_config="rc", hub_split=split, limit=limit)
    counter = TokenCounter(tokenizer)
    records, skipped = [], 0
    for index, row in enumerate(rows):
        missing = [c for c in ("question", "answer", "entity_pages") if c not in row]
        if missing:
            raise InputError(f"{source}: TriviaQA row {index} lacks column {missing[0]!r} (columns: {sorted(row)})")
        documents = list((row["entity_pages"] or {}).get("wiki_context") or [])
        if search_results:
            documents += list((row.get("search_results") or {}).get("search_context") or [])
        segments = [d for d in documents if d and d.strip()]
        answer = row["answer"] or {}
        accepted = [answer.get("value"), *(answer.get("aliases") or []), *(answer.get("normalized_aliases") or [])]
        answers = list(dict.fromkeys(a for a in accepted if a and a.strip()))
        if not segments or not answers:
            skipped += 1
            continue
        draft = Draft(segments, [], [], row["question"], answers, 0)
        row_id = str(row.get("question_id") or index)
        records.append(draft_record(draft, f"triviaqa-{row_id}", "triviaqa", None, split, row_id, counter))
    if skipped:
        log.warning("TriviaQA %s: skipped %d of %d rows without evidence documents or answers", source, skipped,
                    len(rows))
    if not records:
        raise InputError(f"{source}: no TriviaQA row has both evidence documents and answers")
    return records
