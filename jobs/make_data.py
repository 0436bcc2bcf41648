"""Generate a long-context task as Parquet splits that share no story or record set.

    python jobs/make_data.py --task babilong-qa1 --lengths 1k,4k --count 100 --seed 0 --output data/qa1
    python jobs/make_data.py --task kv-recall --lengths 256 --count 50 --output data/kv --preset tiny \\
        --splits train=0.9,test=0.1

Lengths count the tokens of the model that will train on the data: the tokenizer of ``--preset`` (default: the main
preset, smollm2-135m where installed, else tiny), or ``--tokenizer``. Writes DIR/<split>.parquet (``--count`` records
per length, divided by ``--splits``; the same arguments give the same bytes) and prints the tokenizer, counts, token
lengths and supporting-fact depths. Bad arguments exit 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perk_ray.cli import main_preset, run_cli
from perk_ray.config import load_config
from perk_ray.data import TASKS, make_splits, parse_fractions, parse_lengths, resolve_tokenizer, summarize
from perk_ray.data.io import write_parquet
from perk_ray.data.tasks import check_task
from perk_ray.errors import InputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line through run_cli, not usage + message
        raise InputError(message)


def main() -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help=f"one of: {', '.join(TASKS)}")
    parser.add_argument("--lengths", default="1k", help="target lengths in tokens, e.g. 1k,4k or 512 (default 1k)")
    parser.add_argument("--count", type=int, default=100, help="records per length, all splits (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, type=Path, help="directory for <split>.parquet")
    parser.add_argument("--preset", help="the preset whose model will train on the data: its tokenizer counts the "
                        "lengths (default: the main preset)")
    parser.add_argument("--tokenizer", help="count with this tokenizer instead: tiny | smollm2-135m | Hugging Face "
                        "id or directory")
    parser.add_argument("--splits", default="train=0.8,dev=0.1,test=0.1", help="NAME=FRACTION,... summing to 1")
    args = parser.parse_args()
    check_task(args.task)
    lengths = parse_lengths(args.lengths)
    fractions = parse_fractions(args.splits)
    if args.count < 1:
        raise InputError(f"--count {args.count}: give at least 1 record per length")
    if args.tokenizer:
        tokenizer, source = args.tokenizer, "--tokenizer"
    else:
        preset = args.preset or main_preset()
        tokenizer, source = load_config(preset).model.name, f"preset {preset}"
    splits = make_splits(args.task, lengths=lengths, count=args.count, seed=args.seed,
                         tokenizer=resolve_tokenizer(tokenizer), fractions=fractions)
    print(f"task {args.task}, lengths in tokens of {tokenizer} ({source}), seed {args.seed}")
    print(summarize(splits))
    for name, records in splits.items():
        print(f"wrote {write_parquet(records, args.output / f'{name}.parquet')} ({len(records)} records)")
    return 0


def cli() -> None:
    """Console-script entry point: ``main`` with perk-ray's exit codes."""
    run_cli(main)


if __name__ == "__main__":
    cli()
