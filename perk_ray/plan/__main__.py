"""``python -m perk_ray.plan --preset qwen2.5-7b [section.field=value ...] [--gpu H100-80GB] [--headroom 0.2]``."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from perk_ray.config import PerkConfig, available_presets, load_config
from perk_ray.errors import PerkError
from perk_ray.plan.gpus import DEFAULT_HEADROOM, GPUS
from perk_ray.plan.report import plan_report


@dataclass(frozen=True)
class PlanInputs:
    cfg: PerkConfig
    gpu: str | None
    headroom: float


def parse(argv: list[str]) -> PlanInputs:
    """The planner's inputs from a command line (also used for the ``perk-ray/plan`` notes in cluster/)."""
    parser = argparse.ArgumentParser(prog="python -m perk_ray.plan", description="PERK meta-training planner")
    parser.add_argument("--preset", default="tiny", help=f"one of {available_presets()} or a YAML path")
    parser.add_argument("--gpu", help=f"only this GPU kind ({', '.join(GPUS)})")
    parser.add_argument("--headroom", type=float, default=DEFAULT_HEADROOM,
                        help="fraction of GPU memory kept free (default %(default)s)")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. inner.truncation=1 train.num_workers=4")
    args = parser.parse_args(argv)
    return PlanInputs(load_config(args.preset, args.overrides), args.gpu, args.headroom)


def main(argv: list[str] | None = None) -> int:
    try:
        inputs = parse(sys.argv[1:] if argv is None else argv)
        print(plan_report(inputs.cfg, inputs.headroom, inputs.gpu))
    except PerkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
