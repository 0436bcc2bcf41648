"""A plain-text summary of generated splits: counts, token lengths per bucket, supporting-fact depths."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from perk_ray.data.parse import format_length
from perk_ray.data.schema import TaskRecord

DEPTH_BINS = 5


def summarize(splits: Mapping[str, list[TaskRecord]]) -> str:
    records = [r for split in splits.values() for r in split]
    lines = [f"{'split':<10}{'records':>8}"]
    lines += [f"{name:<10}{len(split):>8}" for name, split in splits.items()]
    lines.append(f"{'length':<10}{'records':>8}   tokens min / median / max")
    for target in sorted({r.target_length for r in records}, key=lambda t: (t is None, t or 0)):
        tokens = [r.context_tokens for r in records if r.target_length == target]
        label = "none" if target is None else format_length(target)
        lines.append(f"{label:<10}{len(tokens):>8}   {min(tokens)} / {statistics.median(tokens):g} / {max(tokens)}")
    depths = [d for r in records for d in r.fact_depths]
    bins = [0] * DEPTH_BINS
    for depth in depths:
        bins[min(int(depth * DEPTH_BINS), DEPTH_BINS - 1)] += 1
    edges = [f"{i / DEPTH_BINS:g}-{(i + 1) / DEPTH_BINS:g}" for i in range(DEPTH_BINS)]
    lines.append(f"{'fact depth':<10}" + "".join(f"{edge:>9}" for edge in edges))
    lines.append(f"{'facts':<10}" + "".join(f"{n:>9}" for n in bins))
    return "\n".join(lines)
