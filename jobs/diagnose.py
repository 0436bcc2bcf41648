"""Split an evaluation's BabiLong qa1 accuracy by where the asked person's moves fall among the chunks.

    python jobs/diagnose.py --results runs/smollm2-results/eval/results.json \\
        --data runs/smollm2-results/data/test.parquet --tokenizer smollm2-135m --chunk-tokens 128

Writes ``layout.md`` and ``layout.json`` next to the results: per method and length, the accuracy (Wilson 95% CI)
on questions whose person moved once, several times inside one chunk, or in different chunks (whose order only
the doc ids carry). Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perk_ray.cli import run_cli
from perk_ray.data import read_records
from perk_ray.errors import InputError
from perk_ray.evaluation.diagnostics import accuracy_by_layout
from perk_ray.model import load_tokenizer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, type=Path, help="results.json of jobs/evaluate.py")
    parser.add_argument("--data", required=True, help="the evaluated records (Parquet/JSONL)")
    parser.add_argument("--tokenizer", default="smollm2-135m", help="tokenizer that chunked the context")
    parser.add_argument("--chunk-tokens", type=int, default=128, help="inner.chunk_tokens of the checkpoint")
    parser.add_argument("--metric", default="babilong", choices=("babilong", "exact_match"))
    args = parser.parse_args()
    if not args.results.is_file():
        raise InputError(f"--results {args.results}: no such file")
    rows = json.loads(args.results.read_text())["examples"]
    table = accuracy_by_layout(rows, read_records(args.data), load_tokenizer(args.tokenizer), args.chunk_tokens,
                               args.metric)
    lines = [f"# {args.metric} accuracy by where the person's moves fall ({args.chunk_tokens}-token chunks)", "",
             "| method | length | layout | n | accuracy % [95% CI] |", "|---|---|---|---|---|"]
    lines += [f"| {e['method']} | {e['length']} | {e['layout']} | {e['n']} | {100 * e['accuracy']:.1f} "
              f"[{100 * e['low']:.1f}, {100 * e['high']:.1f}] |" for e in table]
    out = args.results.with_name("layout.md")
    out.write_text("\n".join(lines) + "\n")
    args.results.with_name("layout.json").write_text(json.dumps(table, indent=2) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
