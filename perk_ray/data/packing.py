"""Choose variable-size units (sentences, records) whose sizes sum close to a token budget, never over it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Unit = tuple[T, int]

_MIN_DRAW = 24
_IDLE_ROUNDS = 3


def pack(budget: int, draw: Callable[[int], list[Unit]], tolerance: int) -> list[Unit]:
    """Units from ``draw(n)`` (n fresh ``(unit, size)`` pairs) with total size in ``[budget - tolerance, budget]``
    when reachable: greedy in draw order (so the gap shrinks to best fits), then swaps of a chosen unit for a
    slightly larger spare one. Deterministic given ``draw``."""
    chosen: list[Unit] = []
    spares: list[Unit] = []
    used, idle = 0, 0
    while budget - used > tolerance and idle < _IDLE_ROUNDS:
        mean = used / len(chosen) if chosen else 16
        before = used
        for unit, size in draw(max(_MIN_DRAW, int((budget - used) / max(mean, 1)) + 1)):
            if size <= budget - used:
                chosen.append((unit, size))
                used += size
            else:
                spares.append((unit, size))
        idle = idle + 1 if used == before else 0
        spares = spares[-256:]
    return _swap_up(chosen, spares, budget - used, tolerance)


def _swap_up(chosen: list[Unit], spares: list[Unit], gap: int, tolerance: int) -> list[Unit]:
    """Close the remaining gap by replacing chosen units with spares up to ``gap`` larger."""
    by_size: dict[int, list[int]] = {}
    for index, (_, size) in enumerate(chosen):
        by_size.setdefault(size, []).append(index)
    for spare in sorted(spares, key=lambda s: s[1]):
        if gap <= tolerance:
            break
        for delta in range(min(gap, spare[1] - 1), 0, -1):
            slots = by_size.get(spare[1] - delta)
            if slots:
                index = slots.pop()
                chosen[index] = spare
                by_size.setdefault(spare[1], []).append(index)
                gap -= delta
                break
    return chosen
