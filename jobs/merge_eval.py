"""Merge evaluations of one checkpoint run separately (per method or length) into one report.

    python jobs/merge_eval.py --output runs/smollm2-results/eval \\
        runs/smollm2-results/eval-main/results.json runs/smollm2-results/eval-baselines/results.json

Writes results.json, results.md and the PNG plots to --output, with the aggregates (Wilson 95% CIs) recomputed over
all rows. Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perk_ray.cli import run_cli
from perk_ray.errors import InputError
from perk_ray.evaluation.report import write_outputs
from perk_ray.evaluation.runner import merge_results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="directory of the merged report")
    parser.add_argument("results", nargs="+", type=Path, help="results.json files of jobs/evaluate.py")
    args = parser.parse_args()
    missing = [str(p) for p in args.results if not p.is_file()]
    if missing:
        raise InputError(f"no such results file: {', '.join(missing)}")
    results = merge_results(args.results)
    paths = write_outputs(results, args.output)
    for entry in results.summary["overall"]:
        score = entry["babilong"] or entry["exact_match"]
        print(f"{entry['method']}: {100 * score['mean']:.1f}% [{100 * score['low']:.1f}, {100 * score['high']:.1f}] "
              f"(n={entry['n']})")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    run_cli(main)
