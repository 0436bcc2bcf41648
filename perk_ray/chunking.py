"""Context -> batch of fixed-length chunks ``doc_{i}: <chunk><eos>`` with the prefix masked, and their doc ids.

A context is a list of segments (documents). Each segment is cut into chunks on its own, or, packed, the segments
are joined in order and the stream is cut, so that one chunk can hold several segments in their order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from perk_ray.config import InnerConfig
from perk_ray.errors import InputError


@dataclass
class ChunkBatch:
    """Chunks of one context. ``loss_mask[i, t]`` marks positions whose *next* token is a context token."""

    input_ids: Tensor
    attention_mask: Tensor
    loss_mask: Tensor
    num_context_tokens: int

    @property
    def num_chunks(self) -> int:
        return self.input_ids.shape[0]

    @property
    def num_loss_tokens(self) -> int:
        """Positions that carry inner loss (every chunk token and each chunk's EOS): the inner loss divides by it."""
        return int(self.loss_mask.sum())

    def to(self, device: torch.device | str) -> ChunkBatch:
        return ChunkBatch(
            self.input_ids.to(device), self.attention_mask.to(device), self.loss_mask.to(device),
            self.num_context_tokens,
        )

    def select(self, index: Tensor | slice | list[int]) -> ChunkBatch:
        return ChunkBatch(self.input_ids[index], self.attention_mask[index], self.loss_mask[index],
                          self.num_context_tokens)

    def micro_batches(self, size: int) -> Iterator[ChunkBatch]:
        """Consecutive groups of at most ``size`` chunks, trimmed to their longest chunk."""
        for start in range(0, self.num_chunks, size):
            part = self.select(slice(start, start + size))
            width = int(part.attention_mask.sum(dim=1).max())
            yield ChunkBatch(part.input_ids[:, :width], part.attention_mask[:, :width], part.loss_mask[:, :width],
                             part.num_context_tokens)

    def shard(self, rank: int, world_size: int) -> ChunkBatch:
        """This rank's share of the chunks (round robin) for context parallelism."""
        return self.select(list(range(rank, self.num_chunks, world_size)))


def context_token_ids(tokenizer: PreTrainedTokenizerBase, context: str | Sequence[str]) -> list[list[int]]:
    """Token ids of each segment of a context (a string is one segment).

    Each segment is tokenised with one leading space, as it follows ``doc_{i}:``: its first word keeps the token it
    has inside running text (no lone trailing-space token in the prefix with GPT-2/Qwen/SmolLM2 BPE).
    """
    segments = [context] if isinstance(context, str) else list(context)
    if not segments or all(not s.strip() for s in segments):
        raise InputError("context is empty: give at least one non-blank segment of text")
    return [tokenizer.encode(" " + s.strip(), add_special_tokens=False) for s in segments if s.strip()]


def number_chunks(count: int, doc_ids: str, doc_id_range: int = 0,
                  generator: torch.Generator | None = None) -> list[int]:
    """The doc ids of ``count`` chunks in context order: 'in_order' 0 .. count-1; 'shuffled' a random permutation of
    them (the encoding cannot rely on order); 'increasing' a random increasing draw from 0 .. max(doc_id_range,
    count) - 1 (order kept, no id tied to a position)."""
    if doc_ids == "in_order":
        return list(range(count))
    if doc_ids == "shuffled":
        return torch.randperm(count, generator=generator).tolist()
    if doc_ids == "increasing":
        return sorted(torch.randperm(max(doc_id_range, count), generator=generator)[:count].tolist())
    raise ValueError(f"doc_ids={doc_ids!r}: expected 'in_order', 'shuffled' or 'increasing'")


def chunk_positions(lengths: Sequence[int], chunk_tokens: int,
                    packed: bool = False) -> list[list[tuple[int, int]]]:
    """(chunk row, index within the chunk) of every token of each segment, from the segments' token counts: each
    segment cut on its own every ``chunk_tokens`` tokens, or (``packed``) the segments joined in order and cut."""
    positions: list[list[tuple[int, int]]] = []
    row, offset = 0, 0
    for length in lengths:
        if packed:
            positions.append([divmod(offset + i, chunk_tokens) for i in range(length)])
            offset += length
        else:
            positions.append([(row + i // chunk_tokens, i % chunk_tokens) for i in range(length)])
            row += -(-length // chunk_tokens)
    return positions


def cut_chunks(segments: Sequence[list[int]], chunk_tokens: int, packed: bool = False) -> list[list[int]]:
    """The token ids of each chunk, laid out as ``chunk_positions`` says."""
    pieces: list[list[int]] = []
    for ids, spans in zip(segments, chunk_positions([len(ids) for ids in segments], chunk_tokens, packed)):
        for token, (row, _) in zip(ids, spans):
            if row == len(pieces):
                pieces.append([])
            pieces[row].append(token)
    return pieces


def build_chunks(
    tokenizer: PreTrainedTokenizerBase,
    context: str | Sequence[str],
    chunk_tokens: int,
    max_context_tokens: int,
    doc_ids: str = "in_order",
    generator: torch.Generator | None = None,
    doc_id_range: int = 0,
    packed: bool = False,
) -> ChunkBatch:
    """Cut the context into chunks of ``chunk_tokens`` tokens (each segment alone, or the segments joined when
    ``packed``); chunk i becomes ``doc_{id}: <tokens><eos>``.

    The loss covers the chunk tokens and the EOS, not the ``doc_{id}:`` prefix. The ids follow ``doc_ids``
    (``number_chunks``).
    """
    segments = context_token_ids(tokenizer, context)
    total = sum(len(ids) for ids in segments)
    if total > max_context_tokens:
        raise InputError(
            f"context has {total} tokens, over the limit inner.max_context_tokens={max_context_tokens}"
        )
    pieces = cut_chunks(segments, chunk_tokens, packed)
    ids = number_chunks(len(pieces), doc_ids, doc_id_range, generator)
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    rows = []
    for doc_id, piece in zip(ids, pieces):
        prefix = tokenizer.encode(f"doc_{doc_id}:", add_special_tokens=False)
        rows.append((prefix + piece + eos, len(prefix)))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    loss_mask = torch.zeros((len(rows), width), dtype=torch.float32)
    for row, (ids, prefix_len) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention_mask[row, : len(ids)] = 1
        # position t predicts token t+1: targets are the chunk tokens and the EOS at prefix_len .. len-1
        loss_mask[row, prefix_len - 1 : len(ids) - 1] = 1.0
    return ChunkBatch(input_ids, attention_mask, loss_mask, total)


def chunk_context(tokenizer: PreTrainedTokenizerBase, context: str | Sequence[str], inner: InnerConfig,
                  doc_ids: str = "in_order", generator: torch.Generator | None = None,
                  max_context_tokens: int | None = None) -> ChunkBatch:
    """The context's chunks laid out as ``inner`` says (chunk length, packing, token limit, id range): the one way
    training, encoding, baselines and diagnostics chunk a context, so they cannot disagree. Ids are in order, as at
    inference, unless ``doc_ids`` says otherwise; ``max_context_tokens`` overrides ``inner``'s limit."""
    limit = inner.max_context_tokens if max_context_tokens is None else max_context_tokens
    return build_chunks(tokenizer, context, inner.chunk_tokens, limit, doc_ids, generator, inner.doc_id_range,
                        packed=inner.pack_segments)
