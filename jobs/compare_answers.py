"""Compare two evaluations answered on the same examples, pair by pair (exact McNemar test), per length.

    python jobs/compare_answers.py --output runs/doc-ids \\
        "increasing=runs/smollm2-k4-inc/eval300-1x/results.json" "shuffled=runs/smollm2-k4/eval300-1x/results.json"

Each evaluation is LABEL=RESULTS_JSON (jobs/evaluate.py's results.json, or one merged by jobs/merge_eval.py);
examples are matched by id, so both must come from the same test split. Writes paired.md to --output: per length,
both accuracies with Wilson 95% intervals, the examples only A or only B got right, and the exact McNemar p-value.
Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perk_ray.cli import parse_labelled_files, run_cli
from perk_ray.evaluation.paired import compare_paired, load_examples
from perk_ray.evaluation.report import pct


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, type=Path, help="directory for paired.md")
    parser.add_argument("--method", default="perk", help="method whose answers are compared (default perk)")
    parser.add_argument("--metric", default="babilong", choices=("babilong", "exact_match"))
    parser.add_argument("a", help="LABEL=RESULTS_JSON")
    parser.add_argument("b", help="LABEL=RESULTS_JSON")
    args = parser.parse_args()
    (label_a, path_a), (label_b, path_b) = parse_labelled_files([args.a, args.b], "RESULTS_JSON").items()
    comparisons = compare_paired(load_examples(path_a, args.method), load_examples(path_b, args.method), args.metric)
    lines = [f"# {label_a} against {label_b}: {args.method}, {args.metric} %, the same examples", "",
             f"| length | n | {label_a} [95% CI] | {label_b} [95% CI] | right only in A | right only in B | "
             "exact McNemar p |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c.length} | {c.a.n} | {pct(c.a.to_dict())} | {pct(c.b.to_dict())} | {c.a_only} | {c.b_only} | "
              f"{c.p_value:.3f} |" for c in comparisons]
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "paired.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.output / 'paired.md'}")
    return 0


if __name__ == "__main__":
    run_cli(main)
