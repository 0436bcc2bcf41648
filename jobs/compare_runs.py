"""Compare meta-training runs by their dev accuracy and inner loss, step by step (a table and a PNG).

    python jobs/compare_runs.py --dev-count 24 --output runs/levers \\
        "K=2 (preset)=runs/smollm2-results/metrics.jsonl" "K=4, T=2=runs/smollm2-k4/metrics.jsonl"

Each run is LABEL=METRICS_FILE (a run's metrics.jsonl; runs compared should share their dev split). Writes
runs.md (dev exact match per evaluation with Wilson 95% intervals over --dev-count contexts, and the mean weighted
inner loss before encoding since the previous evaluation) and runs.png to --output. Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perk_ray.cli import parse_labelled_files, run_cli
from perk_ray.errors import InputError
from perk_ray.train.curves import dev_by_step, plot_run_comparison


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="directory for runs.md and runs.png")
    parser.add_argument("--dev-count", required=True, type=int, help="dev contexts behind each dev accuracy")
    parser.add_argument("runs", nargs="+", help="LABEL=METRICS_FILE")
    args = parser.parse_args()
    if args.dev_count < 1:
        raise InputError(f"--dev-count must be at least 1, got {args.dev_count}")
    runs = parse_labelled_files(args.runs, "METRICS_FILE")
    points = dev_by_step(runs, args.dev_count)
    lines = [f"# Dev exact match by meta-step ({args.dev_count} dev contexts, Wilson 95%)", "",
             "| run | step | dev exact match % [95% CI] | mean weighted inner loss before encoding since the last |",
             "|---|---|---|---|"]
    lines += [f"| {label} | {d['step']} | {100 * d['accuracy']:.1f} [{100 * d['low']:.1f}, {100 * d['high']:.1f}] | "
              f"{d['inner_loss_first']:.3g} |" for label, dev in points.items() for d in dev]
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "runs.md").write_text("\n".join(lines) + "\n")
    png = plot_run_comparison(runs, args.dev_count, args.output / "runs.png", points)
    print("\n".join(lines))
    print(f"wrote {args.output / 'runs.md'}, {png}")
    return 0


if __name__ == "__main__":
    run_cli(main)
