"""Command-line spellings of lengths (``1k``, ``128k``, ``512``) and split fractions (``train=0.8,...``)."""

from __future__ import annotations

import re

from perk_ray.errors import InputError

MAX_LENGTH = 1 << 20
_LENGTH = re.compile(r"(\d+)([kK]?)")
_SPLIT_NAME = re.compile(r"[A-Za-z0-9_-]+")


def parse_length(text: str) -> int:
    """``1k`` = 1024 tokens, ``128k`` = 131072; a plain integer is a count of tokens."""
    match = _LENGTH.fullmatch(text.strip())
    if not match:
        raise InputError(f"length {text!r} is not a number of tokens like 512, 1k or 128k")
    value = int(match.group(1)) * (1024 if match.group(2) else 1)
    if not 1 <= value <= MAX_LENGTH:
        raise InputError(f"length {text!r} is outside [1, {MAX_LENGTH // 1024}k] tokens")
    return value


def parse_lengths(text: str) -> list[int]:
    """Comma-separated lengths, e.g. ``1k,4k``."""
    items = [item for item in text.split(",") if item.strip()]
    if not items:
        raise InputError("no length given; e.g. --lengths 1k,4k")
    return [parse_length(item) for item in items]


def format_length(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens % 1024 == 0 else str(tokens)


def parse_fractions(text: str) -> dict[str, float]:
    """``train=0.8,dev=0.1,test=0.1`` -> {'train': 0.8, 'dev': 0.1, 'test': 0.1} (validated elsewhere)."""
    fractions: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, sep, value = item.partition("=")
        if not sep or not _SPLIT_NAME.fullmatch(name.strip()):
            raise InputError(f"split {item!r} is not NAME=FRACTION, e.g. train=0.8")
        if name.strip() in fractions:
            raise InputError(f"split {name.strip()!r} is given twice")
        try:
            fractions[name.strip()] = float(value)
        except ValueError:
            raise InputError(f"split {item!r}: {value!r} is not a number") from None
    return fractions
