"""Two evaluations answered on the same examples, compared pair by pair: exact McNemar test on the discordant pairs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perk_ray.errors import InputError
from perk_ray.evaluation.metrics import Estimate, wilson_ci


@dataclass
class PairedComparison:
    """Accuracies of A and B on the same ``n`` examples of one length, and who alone got which right."""

    length: int
    a: Estimate
    b: Estimate
    a_only: int
    b_only: int

    @property
    def p_value(self) -> float:
        return exact_mcnemar(self.a_only, self.b_only)


def exact_mcnemar(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: under 'A and B are equally accurate' each discordant pair is a fair coin."""
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2**n
    return min(1.0, 2 * tail)


def load_examples(path: Path, method: str) -> list[dict]:
    """One method's per-example rows of an evaluation's results.json."""
    if not path.is_file():
        raise InputError(f"no such results file {path}")
    rows = [row for row in json.loads(path.read_text()).get("examples", []) if row.get("method") == method]
    if not rows:
        raise InputError(f"{path}: no examples of method {method!r}")
    return rows


def compare_paired(a_rows: Sequence[dict], b_rows: Sequence[dict], metric: str = "babilong") -> list[PairedComparison]:
    """Per length, the examples both evaluations answered (matched by id), scored by ``metric`` (0/1)."""
    b_by_id = {row["id"]: row for row in b_rows}
    pairs: dict[int, list[tuple[float, float]]] = {}
    for row in a_rows:
        other = b_by_id.get(row["id"])
        if other is not None and row.get(metric) is not None and other.get(metric) is not None:
            pairs.setdefault(int(row["length"]), []).append((float(row[metric]), float(other[metric])))
    if not pairs:
        raise InputError(f"the two evaluations share no scored example ids (metric {metric!r})")
    return [PairedComparison(length, wilson_ci([a for a, _ in scored]), wilson_ci([b for _, b in scored]),
                             sum(a > b for a, b in scored), sum(b > a for a, b in scored))
            for length, scored in sorted(pairs.items())]
