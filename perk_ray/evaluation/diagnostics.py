"""Diagnostics of a qa1 result: where the asked person's moves fall among the chunks (and accuracy split by it), where
each answered place comes from in the context, and how much of the needed fact the memory takes in as the context
grows.

A "Where is X?" question needs X's latest move. With one move of X in the context no order is needed; with several
in one chunk, their order is visible inside that chunk; with moves in different chunks it is carried only by the
chunks' doc ids, which meta-training shuffles. Splitting accuracy this way shows whether cross-chunk order is what
fails.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from perk_ray.chunking import chunk_context, chunk_positions
from perk_ray.data import TaskRecord
from perk_ray.data.babi import MOVE_VERBS
from perk_ray.engine import PerkEngine
from perk_ray.evaluation.metrics import first_sentence, wilson_ci
from perk_ray.evaluation.records import task_labels
from perk_ray.inner_loop import base_last_hidden, next_token_hidden
from perk_ray.model import lora_forward

LAYOUTS = ("one move", "moves in one chunk", "moves across chunks")
SOURCES = ("the latest place", "an earlier place of the person", "another person's place", "not in the context",
           "no place")
WHERE_QUESTION = re.compile(r"^Where is (\w+)\?$")


def move_pattern(name: str | None) -> re.Pattern[str]:
    """The move sentences of ``name`` (of anyone when None); group 1 is the place."""
    verbs = "|".join(re.escape(v) for v in sorted(MOVE_VERBS, key=len, reverse=True))
    who = re.escape(name) if name is not None else "[A-Z]\\w*"
    return re.compile(rf"\b{who} (?:{verbs}) the (\w+)\.")


def _segment_tokens(record: TaskRecord, tokenizer: PreTrainedTokenizerBase, chunk_tokens: int,
                    packed: bool) -> list[tuple[str, list, list[tuple[int, int]]]]:
    """Each non-empty segment as ``build_chunks`` tokenises and cuts it (after one space): its text, its token
    offsets and each token's (chunk row, index within the chunk)."""
    segments = []
    for segment in record.context:
        if segment.strip():
            text = " " + segment.strip()
            offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
            segments.append((text, offsets))
    layout = chunk_positions([len(offsets) for _, offsets in segments], chunk_tokens, packed)
    return [(text, offsets, spans) for (text, offsets), spans in zip(segments, layout)]


def fact_layout(record: TaskRecord, tokenizer: PreTrainedTokenizerBase, chunk_tokens: int,
                packed: bool = False) -> str | None:
    """One of LAYOUTS for a "Where is X?" record (None for other questions), chunked as ``build_chunks`` does:
    each segment tokenised after one space, then cut every ``chunk_tokens`` tokens (alone, or joined if ``packed``)."""
    match = WHERE_QUESTION.match(record.question.strip())
    if match is None:
        return None
    pattern = move_pattern(match.group(1))
    chunks = set()
    moves = 0
    for text, offsets, spans in _segment_tokens(record, tokenizer, chunk_tokens, packed):
        for found in pattern.finditer(text):
            token = next(i for i, (_, end) in enumerate(offsets) if end > found.start())
            chunks.add(spans[token][0])
            moves += 1
    if moves <= 1:
        return LAYOUTS[0]
    return LAYOUTS[1] if len(chunks) == 1 else LAYOUTS[2]


def accuracy_by_layout(rows: Sequence[dict[str, Any]], records: Sequence[TaskRecord],
                       tokenizer: PreTrainedTokenizerBase, chunk_tokens: int,
                       metric: str = "babilong", packed: bool = False) -> list[dict[str, Any]]:
    """Per (method, length, layout): n, accuracy and its Wilson 95% interval."""
    by_id = {r.id: r for r in records}
    layouts: dict[str, str | None] = {}
    groups: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for row in rows:
        if row["id"] not in layouts:
            record = by_id.get(row["id"])
            layouts[row["id"]] = fact_layout(record, tokenizer, chunk_tokens, packed) if record else None
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


def person_moves(record: TaskRecord, name: str) -> tuple[list[re.Match[str]], set[str]]:
    """The move sentences of ``name`` in order (group 1: the place) and every place anyone moved to, in the record's
    context (segments joined by spaces)."""
    context = " ".join(segment.strip() for segment in record.context)
    everyone = {found.group(1) for found in move_pattern(None).finditer(context)}
    return list(move_pattern(name).finditer(context)), everyone


def person_places(record: TaskRecord, name: str) -> tuple[list[str], set[str]]:
    """The places ``name`` moved to, in order, and every place anyone moved to in the record's context."""
    moves, everyone = person_moves(record, name)
    return [move.group(1) for move in moves], everyone


def answer_source(prediction: str, record: TaskRecord) -> str | None:
    """Where the place a "Where is X?" answer names comes from (one of SOURCES; None for other questions): X's
    latest move, an earlier move of X, a move of someone else, or nowhere in the context. A memory that keeps the
    facts but not their order answers with earlier places; one that keeps little answers with other people's places
    or the prior's favourite."""
    match = WHERE_QUESTION.match(record.question.strip())
    if match is None:
        return None
    text = first_sentence(prediction)
    named = [label for label in task_labels(record.task) if re.search(rf"\b{re.escape(label)}\b", text)]
    if not named:
        return SOURCES[4]
    place = min(named, key=text.index)
    own, anyone = person_places(record, match.group(1))
    if own and place == own[-1]:
        return SOURCES[0]
    if place in own:
        return SOURCES[1]
    return SOURCES[2] if place in anyone else SOURCES[3]


def uniform_sources(record: TaskRecord) -> dict[str, float] | None:
    """The SOURCES shares expected of a reader that names a place of the context at random: it knows which places
    occur, not who went where (the null that perk's shares are read against)."""
    match = WHERE_QUESTION.match(record.question.strip())
    own, anyone = person_places(record, match.group(1)) if match else ([], set())
    if not own or not anyone:
        return None
    earlier = len(set(own) - {own[-1]})
    return {SOURCES[0]: 1 / len(anyone), SOURCES[1]: earlier / len(anyone),
            SOURCES[2]: 1 - (1 + earlier) / len(anyone), SOURCES[3]: 0.0, SOURCES[4]: 0.0}


def answer_sources(rows: Sequence[dict[str, Any]], records: Sequence[TaskRecord]) -> list[dict[str, Any]]:
    """Per (method, length): n, the share of answers from each of SOURCES and the most frequent answer's share (a
    collapse to one place, e.g. the closed-book prior, shows there); per length also the row of a reader that picks
    a place of the context at random (method ``uniform over the context's places``)."""
    by_id = {r.id: r for r in records}
    groups: dict[tuple[str, int], list[tuple[str, str]]] = defaultdict(list)
    nulls: dict[int, dict[str, dict[str, float]]] = defaultdict(dict)
    for row in rows:
        record = by_id.get(row["id"])
        source = answer_source(row["prediction"], record) if record else None
        if source is None:
            continue
        groups[(row["method"], row["length"])].append((source, row["prediction"].strip().lower()))
        expected = uniform_sources(record)
        if expected is not None:
            nulls[row["length"]][record.id] = expected
    table = []
    for (method, length), found in sorted(groups.items()):
        counts = Counter(source for source, _ in found)
        answer, top = Counter(prediction for _, prediction in found).most_common(1)[0]
        table.append({"method": method, "length": length, "n": len(found),
                      **{source: counts[source] / len(found) for source in SOURCES},
                      "top_answer": answer, "top_share": top / len(found)})
    for length, expected in sorted(nulls.items()):
        table.append({"method": "uniform over the context's places", "length": length, "n": len(expected),
                      **{source: sum(e[source] for e in expected.values()) / len(expected) for source in SOURCES},
                      "top_answer": None, "top_share": None})
    return table


def _fact_positions(record: TaskRecord, tokenizer: PreTrainedTokenizerBase, chunk_tokens: int, packed: bool,
                    sentences: Sequence[str]) -> list[tuple[int, int]]:
    """(chunk row, token index within the chunk's context tokens) of every token of ``sentences`` in the context."""
    positions = []
    for text, offsets, spans in _segment_tokens(record, tokenizer, chunk_tokens, packed):
        for sentence in sentences:
            for found in re.finditer(re.escape(sentence.strip()), text):
                tokens = [i for i, (start, end) in enumerate(offsets) if end > found.start() and start < found.end()]
                positions += [spans[i] for i in tokens]
    return positions


@torch.no_grad()
def fact_signal(engine: PerkEngine, record: TaskRecord) -> dict[str, float]:
    """How much of the needed fact the memory took in: the next-token CE on the supporting sentence's tokens and on
    all other context tokens, before (meta-learned init) and after encoding, and the token weighting model's mean
    weight on each (the weight of predicting a token comes from the hidden state at that token)."""
    inner = engine.cfg.inner
    tokenizer = engine.base.tokenizer
    chunks = chunk_context(tokenizer, record.context, inner).to(engine.base.device)
    prefix = [len(tokenizer.encode(f"doc_{i}:", add_special_tokens=False)) for i in range(chunks.num_chunks)]
    fact = torch.zeros_like(chunks.loss_mask, dtype=torch.bool)
    for row, index in _fact_positions(record, tokenizer, inner.chunk_tokens, inner.pack_segments,
                                      record.support):
        fact[row, prefix[row] + index - 1] = True  # the position that predicts that token
    other = chunks.loss_mask.bool() & ~fact
    targets = torch.nn.functional.pad(chunks.input_ids[:, 1:], (0, 1))
    out: dict[str, float] = {"chunks": float(chunks.num_chunks), "fact_tokens": float(fact.sum())}
    for label, memory in (("before", engine.initial_memory()), ("after", engine.encode(record.context))):
        logits = lora_forward(engine.base, memory.params, chunks.input_ids, chunks.attention_mask).logits.float()
        ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        out[f"fact_ce_{label}"] = float(ce[fact].mean())
        out[f"other_ce_{label}"] = float(ce[other].mean())
    if engine.meta.weighting is not None:
        hidden = base_last_hidden(engine.base, chunks)
        weights = engine.meta.weighting(next_token_hidden(hidden), chunks.loss_mask.to(hidden.dtype)).float()
        out["fact_weight"] = float(weights[fact].mean())
        out["other_weight"] = float(weights[other].mean())
    return out


SIGNAL_KEYS = ("chunks", "fact_ce_before", "fact_ce_after", "other_ce_before", "other_ce_after", "fact_weight",
               "other_weight")


def fact_signal_by_length(engine: PerkEngine, records: Sequence[TaskRecord], per_length: int) -> dict[int, dict]:
    """Mean ``fact_signal`` per target length over the first ``per_length`` records with supporting facts."""
    by_length: dict[int, list[dict[str, float]]] = defaultdict(list)
    for record in records:
        if record.support and len(by_length[record.target_length]) < per_length:
            by_length[record.target_length].append(fact_signal(engine, record))
    return {length: {k: sum(r.get(k, float("nan")) for r in rows) / len(rows) for k in SIGNAL_KEYS}
            for length, rows in sorted(by_length.items())}
