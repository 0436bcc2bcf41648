"""Seeded generation of task records: one independent RNG per record, metadata computed from the draft."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Collection
from typing import Any

from perk_ray.data.schema import SEGMENT_SEPARATOR, TaskRecord
from perk_ray.data.tasks import Draft, task_builder
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

_DRAWS_PER_RECORD = 20


def generate(task: str, *, count: int, target_tokens: int | None, seed: int, tokenizer: Any = None,
             split: str = "train", exclude_sources: Collection[str] = (), **task_kwargs: Any) -> list[TaskRecord]:
    """``count`` records of ``task``, each a fresh world, padded to ``target_tokens`` tokens of ``tokenizer``
    (None: the tiny byte tokenizer; ``target_tokens=None``: no haystack, one segment per fact).

    Deterministic in (task, seed, split, target_tokens, options). Worlds whose ``source_id`` is in
    ``exclude_sources`` are skipped (``make_splits`` uses this to keep splits disjoint).
    """
    build = task_builder(task, task_kwargs)
    if not isinstance(count, int) or count < 1:
        raise InputError(f"count={count!r} must be an integer >= 1")
    if target_tokens is not None and (not isinstance(target_tokens, int) or target_tokens < 1):
        raise InputError(f"target_tokens={target_tokens!r} must be an integer >= 1 or None")
    counter = TokenCounter(tokenizer)
    records: list[TaskRecord] = []
    for attempt in range(count * _DRAWS_PER_RECORD):
        rng = random.Random(f"{task}|{seed}|{split}|{target_tokens}|{attempt}")
        draft = build(rng, target_tokens, counter)
        source_id = f"{task}-{hashlib.sha1(draft.source_key.encode()).hexdigest()[:16]}"
        if source_id in exclude_sources:
            continue
        record_id = f"{task}-{split}-{target_tokens or 0}-s{seed}-{attempt:05d}"
        records.append(draft_record(draft, record_id, task, target_tokens, split, source_id, counter))
        if len(records) == count:
            return records
    raise InputError(f"only {len(records)} of {count} distinct {task} worlds found outside the excluded ones; "
                     "ask for fewer records or widen the task's options")


def draft_record(draft: Draft, record_id: str, task: str, target: int | None, split: str, source_id: str,
                 counter: TokenCounter) -> TaskRecord:
    """The record of a draft, with its metadata computed (depths as fractions of the joined context)."""
    joined = SEGMENT_SEPARATOR.join(draft.segments)
    tokens = draft.tokens if draft.tokens is not None else counter.count(joined)
    return TaskRecord(
        id=record_id, task=task, context=draft.segments, question=draft.question, answer=draft.answer,
        support=draft.support, context_tokens=tokens, context_chars=len(joined),
        fact_depths=[round(offset / len(joined), 6) for offset in draft.support_offsets],
        num_facts=draft.num_facts, target_length=target, split=split, source_id=source_id, qtype=draft.qtype,
    )
