"""Evaluate a PERK meta-checkpoint against prompt-based baselines by length, fact position and task.

    python jobs/evaluate.py --checkpoint runs/tiny/best --data data/kv/test.parquet --output runs/tiny/eval
    python jobs/evaluate.py --checkpoint CKPT --data data/qa1 --methods perk,ttl,icl,icl-ft \\
        --icl-ft-checkpoint runs/icl-ft --limit 200 --num-actors 4 --output runs/eval

Methods: perk, ttl (the inner loop without meta-training), closed-book (the meta-trained init without
encoding), icl (the base model with the context in the prompt), icl-ft (jobs/train_baseline.py). Writes
results.json, results.md and PNG plots to --output. In one process (--num-actors 1, the default) each example's rows
are appended to --output/rows.partial.jsonl as it finishes: run the same command again after a kill and it goes on
from there (a smaller --limit reuses the rows it covers). Trailing ``section.field=value`` arguments override
inference settings of the checkpoint's config (e.g. inner.micro_batch_chunks=8). Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from perk_ray.cli import run_cli
from perk_ray.errors import InputError
from perk_ray.evaluation import EvalOptions, evaluate_records, load_records, write_outputs
from perk_ray.evaluation.journal import JOURNAL_NAME
from perk_ray.evaluation.methods import check_inputs
from perk_ray.evaluation.records import evaluation_path
from perk_ray.runtime import init_ray


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line through run_cli, not usage + message
        raise InputError(message)


def parse_args() -> argparse.Namespace:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="PERK meta-checkpoint directory")
    parser.add_argument("--data", required=True, help="Parquet/JSONL file or directory (project or BabiLong columns; "
                                                       "a make_data.py directory: its test split)")
    parser.add_argument("--output", required=True, type=Path, help="directory for results.json, results.md, plots")
    parser.add_argument("--methods", default="perk,ttl,icl", help="comma-separated (default perk,ttl,icl)")
    parser.add_argument("--icl-ft-checkpoint", help="icl-ft baseline directory (jobs/train_baseline.py)")
    parser.add_argument("--limit", type=int, help="at most N records, round robin over task and length")
    parser.add_argument("--lengths", help="comma-separated target lengths to keep, e.g. 256,512 (default: all)")
    parser.add_argument("--task", help="task name for records that carry none (e.g. babilong-qa1)")
    parser.add_argument("--num-actors", type=int, default=1, help="Ray actors (default 1: in this process)")
    parser.add_argument("--max-new-tokens", type=int, help="greedy tokens per answer (default outer.max_new_tokens)")
    parser.add_argument("--window", type=int, help="context window of icl/icl-ft (default: the model's)")
    parser.add_argument("--overflow", choices=("truncate", "skip"), default="truncate",
                        help="icl/icl-ft context over the window: cut from the left, or mark impossible")
    parser.add_argument("--icl-template", choices=("plain", "chat"), default="plain",
                        help="icl's prompt: plain (default), or the tokenizer's chat template for instruct models")
    parser.add_argument("--ttl-template", choices=("plain", "chat"), default="plain",
                        help="ttl's question prompt: PERK's plain one (default), or the chat template for instruct "
                             "models")
    parser.add_argument("--depth-bins", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("overrides", nargs="*", metavar="section.field=value")
    return parser.parse_args()


def parse_lengths(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--lengths {text!r}: give comma-separated token counts, e.g. 256,512") from None


def main() -> int:
    args = parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    options = EvalOptions(max_new_tokens=args.max_new_tokens, window=args.window, overflow=args.overflow,
                          icl_template=args.icl_template, ttl_template=args.ttl_template,
                          icl_ft_checkpoint=args.icl_ft_checkpoint,
                          depth_bins=args.depth_bins, seed=args.seed, resamples=args.resamples)
    options.validate()
    check_inputs(args.checkpoint, methods, args.icl_ft_checkpoint)  # before loading any model
    records = load_records(args.data, limit=args.limit, task=args.task, lengths=parse_lengths(args.lengths))
    meta = {"checkpoint": str(args.checkpoint), "data": str(evaluation_path(args.data)),
            "overrides": list(args.overrides)}
    progress = not args.no_progress
    if args.num_actors > 1:
        from perk_ray.evaluation.parallel import evaluate_parallel

        init_ray(log_to_driver=False)
        results = evaluate_parallel(args.checkpoint, records, methods, options, num_actors=args.num_actors,
                                    overrides=args.overrides, device=args.device, progress=progress, meta=meta)
    else:
        from perk_ray.engine import PerkEngine

        engine = PerkEngine.from_checkpoint(args.checkpoint, args.device, args.overrides)
        results = evaluate_records(engine, records, methods, options, progress=progress,
                                   journal=args.output / JOURNAL_NAME, meta=meta)
    paths = write_outputs(results, args.output)
    (args.output / JOURNAL_NAME).unlink(missing_ok=True)  # the rows are in results.json now
    for entry in results.summary["overall"]:
        babilong = entry["babilong"]
        extra = f", BabiLong {100 * babilong['mean']:.1f}%" if babilong else ""
        print(f"{entry['method']}: exact match {100 * entry['exact_match']['mean']:.1f}% "
              f"[{100 * entry['exact_match']['low']:.1f}, {100 * entry['exact_match']['high']:.1f}]{extra} "
              f"(n={entry['n']})")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cli() -> None:
    """Console-script entry point: ``main`` with perk-ray's exit codes."""
    run_cli(main)


if __name__ == "__main__":
    cli()
