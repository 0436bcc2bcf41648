"""Command-line plumbing shared by the jobs: ``--preset``, dotted overrides, and clean exits on bad input."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from perk_ray.config import PerkConfig, load_config
from perk_ray.errors import PerkError


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None = "tiny") -> None:
    parser.add_argument("--preset", default=default_preset, help="preset name (perk_ray/presets) or YAML path")
    parser.add_argument("overrides", nargs="*", metavar="section.field=value",
                        help="config overrides, e.g. inner.steps=4 train.num_workers=2")


def config_from_arguments(args: argparse.Namespace, extra: list[str] | None = None) -> PerkConfig:
    return load_config(args.preset, [*args.overrides, *(extra or [])])


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a job's main; a PerkError (bad config, data or checkpoint) exits 2 with one line, no traceback."""
    try:
        code = main()
    except PerkError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
