"""Hide fact sentences in generated prose, padded to a target length in tokens, recording where they land."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass

from perk_ray.data import prose
from perk_ray.data.packing import Unit, pack
from perk_ray.data.schema import SEGMENT_SEPARATOR
from perk_ray.data.tokenizers import TokenCounter
from perk_ray.errors import InputError

PARAGRAPH_SENTENCES = (4, 12)
TOLERANCE = 0.005  # packing aims at [target * (1 - TOLERANCE), target] tokens
_ADD_ROUNDS = 2


class ContextTooLong(InputError):
    """The facts do not fit in the target length."""


@dataclass
class Layout:
    """A context as segments, the start character of each fact in the joined context, and its token count."""

    segments: list[str]
    fact_offsets: list[int]
    tokens: int


@dataclass
class _Piece:
    text: str
    size: int
    fact: int | None  # index into the facts, None for filler


def embed_in_prose(facts: list[str], *, target_tokens: int, counter: TokenCounter, rng: random.Random,
                   depth: float | None = None) -> Layout:
    """Facts (in order) among prose sentences in paragraphs, at most ``target_tokens`` tokens in all.

    ``depth=None`` scatters the facts at random positions; a float in [0, 1] puts them together at that depth.
    """
    fact_sizes = counter.count_many([" " + f for f in facts])
    budget = target_tokens - sum(fact_sizes)
    if budget < 0:
        raise ContextTooLong(f"the facts take {sum(fact_sizes)} tokens, more than the target length of "
                             f"{target_tokens} tokens")
    tolerance = int(target_tokens * TOLERANCE)

    def draw(n: int) -> list[Unit]:
        texts = prose.sentences(rng, n)
        return list(zip(texts, counter.count_many([" " + t for t in texts])))

    filler = pack(budget, draw, tolerance)
    rng.shuffle(filler)
    pieces = [_Piece(text, size, None) for text, size in filler]
    for fact_index, gap in reversed(list(enumerate(_gaps([p.size for p in pieces], len(facts), rng, depth)))):
        pieces.insert(gap, _Piece(facts[fact_index], fact_sizes[fact_index], fact_index))
    lengths = [rng.randint(*PARAGRAPH_SENTENCES) for _ in range(len(pieces) // PARAGRAPH_SENTENCES[0] + 2)]
    return _fit(pieces, lengths, len(facts), target_tokens, tolerance, counter, rng, draw)


def _gaps(sizes: list[int], num_facts: int, rng: random.Random, depth: float | None) -> list[int]:
    """Filler index before which each fact goes (non-decreasing, so the facts keep their order): random, or
    all at the gap whose share of the filler tokens before it is closest to ``depth``."""
    if depth is None:
        return sorted(rng.randint(0, len(sizes)) for _ in range(num_facts))
    before = list(itertools.accumulate(sizes, initial=0))
    gap = min(range(len(before)), key=lambda g: abs(before[g] - depth * before[-1]))
    return [gap] * num_facts


def _fit(pieces: list[_Piece], lengths: list[int], num_facts: int, target: int, tolerance: int,
         counter: TokenCounter, rng: random.Random, draw: Callable[[int], list[Unit]]) -> Layout:
    """Render and count exactly (paragraph breaks shift the estimate), then drop or add filler sentences."""
    additions = 0
    while True:
        segments, offsets = _render(pieces, lengths, num_facts)
        tokens = counter.count(SEGMENT_SEPARATOR.join(segments))
        if tokens > target:
            fillers = [i for i, p in enumerate(pieces) if p.fact is None]
            if not fillers:
                raise ContextTooLong(f"the facts alone take {tokens} tokens, more than the target length of "
                                     f"{target} tokens")
            for index in sorted(_covering(fillers, pieces, tokens - target), reverse=True):
                del pieces[index]
        elif target - tokens > tolerance and additions < _ADD_ROUNDS:
            additions += 1
            for text, size in pack(target - tokens, draw, tolerance):
                pieces.insert(rng.randint(0, len(pieces)), _Piece(text, size, None))
        else:
            return Layout(segments, offsets, tokens)


def _covering(fillers: list[int], pieces: list[_Piece], excess: int) -> list[int]:
    """Few filler indices whose sizes add up to at least ``excess``: one that suffices, else the largest."""
    enough = [i for i in fillers if pieces[i].size >= excess]
    if enough:
        return [min(enough, key=lambda i: pieces[i].size)]
    chosen, removed = [], 0
    for index in sorted(fillers, key=lambda i: -pieces[i].size):
        chosen.append(index)
        removed += pieces[index].size
        if removed >= excess:
            break
    return chosen


def _render(pieces: list[_Piece], lengths: list[int], num_facts: int) -> tuple[list[str], list[int]]:
    segments: list[str] = []
    offsets = [0] * num_facts
    position, start, paragraph = 0, 0, 0
    while start < len(pieces):
        size = lengths[paragraph % len(lengths)]
        sentences = []
        for piece in pieces[start : start + size]:
            if sentences:
                position += 1  # the space before this sentence
            if piece.fact is not None:
                offsets[piece.fact] = position
            sentences.append(piece.text)
            position += len(piece.text)
        segments.append(" ".join(sentences))
        position += len(SEGMENT_SEPARATOR)
        start += size
        paragraph += 1
    return segments, offsets
