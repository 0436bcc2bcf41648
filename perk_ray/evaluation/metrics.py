"""Answer scoring (SQuAD-style exact match, BabiLong label scoring) and seeded bootstrap confidence intervals."""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace (SQuAD's normalisation)."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> bool:
    """True when the normalised prediction equals any normalised accepted answer (an empty prediction never does)."""
    predicted = normalize_answer(prediction)
    return bool(predicted) and any(predicted == normalize_answer(a) for a in answers)


def first_sentence(output: str) -> str:
    """The lowercased output up to its first period, cut before echoed ``<context>``/``<example>`` blocks
    (BabiLong's preprocessing)."""
    text = output.lower().split(".")[0]
    for marker in ("<context>", "<example>"):
        text = text.split(marker)[0]
    return text


def babilong_match(prediction: str, answers: Sequence[str], labels: Sequence[str], question: str) -> bool | None:
    """BabiLong scoring: an accepted answer is the only task label in the output's first sentence, not counting
    labels that also appear in the question. ``None`` when the task has no label set or no answer is a label."""
    label_set = {label.lower() for label in labels}
    targets = [a.lower() for a in answers if a.lower() in label_set]
    if not targets:
        return None
    text = first_sentence(prediction)
    asked = {label for label in label_set if label in question.lower()}
    found = {label for label in label_set if label in text} - asked
    return any(found == {target} for target in targets)


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap 95% confidence interval over ``n`` examples."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def wilson_ci(values: Sequence[float], level: float = 0.95) -> Estimate | None:
    """Mean and Wilson score interval of 0/1 ``values`` (never [0, 0] at 0%, unlike a percentile bootstrap)."""
    n = len(values)
    if n == 0:
        return None
    p = float(np.mean(values))
    z = float(NormalDist().inv_cdf(0.5 + level / 2))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)), n)  # rounding: low <= p


def interval(values: Sequence[float], *, seed: int = 0, resamples: int = 1000) -> Estimate | None:
    """Wilson interval for proportions (all values 0 or 1), else a percentile bootstrap of the mean."""
    if all(v in (0.0, 1.0) for v in values):
        return wilson_ci(values)
    return bootstrap_ci(values, seed=seed, resamples=resamples)


def bootstrap_ci(values: Sequence[float], *, seed: int = 0, resamples: int = 1000,
                 level: float = 0.95) -> Estimate | None:
    """Mean and percentile-bootstrap interval of ``values`` (seeded, so reports are reproducible); None when empty."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(data.mean()), float(low), float(high), int(data.size))
