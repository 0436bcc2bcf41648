"""Aggregates of scored rows: accuracy with 95% CIs (Wilson for proportions) per method overall and by task, length,
fact depth and depth x length; the length-extrapolation regimes; latency and peak memory per method and length."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Any

from perk_ray.evaluation.metrics import interval

Row = dict[str, Any]
Entry = dict[str, Any]


def depth_edges(bins: int) -> list[float]:
    return [i / bins for i in range(bins + 1)]


def depth_bin(depth: float | None, bins: int) -> str | None:
    """The label ``lo-hi`` of the equal-width bin of a depth in [0, 1] (1.0 falls in the last bin)."""
    if depth is None:
        return None
    i = min(int(depth * bins), bins - 1)
    return f"{i / bins:.2f}-{(i + 1) / bins:.2f}"


def regime(length: int, train_lengths: Sequence[int]) -> str:
    """Where a test length lies relative to the meta-training lengths: train, shorter, longer or between."""
    if not train_lengths or length in train_lengths:
        return "train" if train_lengths else "unknown"
    if length > max(train_lengths):
        return "longer"
    return "shorter" if length < min(train_lengths) else "between"


def _scores(rows: list[Row], metric: str, seed: int, resamples: int) -> dict[str, Any] | None:
    values = [float(r[metric]) for r in rows if r[metric] is not None]
    estimate = interval(values, seed=seed, resamples=resamples)
    return estimate.to_dict() if estimate else None


def accuracy_table(rows: list[Row], methods: Sequence[str], keys: dict[str, Callable[[Row], Any]], *, seed: int,
                   resamples: int) -> list[Entry]:
    """One entry per method and key combination (rows whose key is None are left out), in sorted key order."""
    groups: dict[tuple, list[Row]] = defaultdict(list)
    for row in rows:
        values = tuple(fn(row) for fn in keys.values())
        if None not in values:
            groups[(row["method"], *values)].append(row)
    order = {m: i for i, m in enumerate(methods)}
    entries = []
    for group in sorted(groups, key=lambda g: (order[g[0]], *g[1:])):
        members = groups[group]
        statuses = [r["status"] for r in members]
        entries.append({"method": group[0], **dict(zip(keys, group[1:])), "n": len(members),
                        "exact_match": _scores(members, "exact_match", seed, resamples),
                        "babilong": _scores(members, "babilong", seed, resamples),
                        "truncated": statuses.count("truncated"), "impossible": statuses.count("impossible")})
    return entries


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return fmean(present) if present else None


def cost_table(rows: list[Row], methods: Sequence[str]) -> list[Entry]:
    """Mean latency and peak memory per method and length (impossible examples excluded)."""
    groups: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for row in rows:
        if row["status"] != "impossible":
            groups[(row["method"], row["length"])].append(row)
    order = {m: i for i, m in enumerate(methods)}
    entries = []
    for method, length in sorted(groups, key=lambda g: (order[g[0]], g[1])):
        members = groups[(method, length)]
        encode = [r["encode_s"] for r in members]
        answer = [r["answer_s"] for r in members]
        entries.append({
            "method": method, "length": length, "n": len(members),
            "context_tokens": _mean([r["context_tokens"] for r in members]),
            "encode_s": _mean(encode), "answer_s": _mean(answer),
            "total_s": _mean([(e or 0.0) + (a or 0.0) for e, a in zip(encode, answer)]),
            "encode_peak_mib": _mean([r["encode_peak_mib"] for r in members]),
            "answer_peak_mib": _mean([r["answer_peak_mib"] for r in members]),
        })
    return entries


def summarize(rows: list[Row], methods: Sequence[str], *, train_lengths: Sequence[int], depth_bins: int = 5,
              seed: int = 0, resamples: int = 1000) -> dict[str, Any]:
    """Every aggregate of the report (JSON-ready lists of entries)."""
    def table(keys: dict[str, Callable[[Row], Any]]) -> list[Entry]:
        return accuracy_table(rows, methods, keys, seed=seed, resamples=resamples)

    length = {"length": lambda r: r["length"]}
    depth = {"depth_bin": lambda r: depth_bin(r["depth"], depth_bins)}
    return {
        "overall": table({}),
        "by_task": table({"task": lambda r: r["task"]}),
        "by_length": [{**e, "regime": regime(e["length"], train_lengths)} for e in table(length)],
        "by_depth": table(depth),
        "by_depth_length": table({**length, **depth}),
        "length_extrapolation": table({"regime": lambda r: regime(r["length"], train_lengths)}),
        "cost": cost_table(rows, methods),
        "train_lengths": list(train_lengths),
        "depth_edges": depth_edges(depth_bins),
    }
