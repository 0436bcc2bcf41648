"""Split an evaluation's BabiLong qa1 accuracy by where the asked person's moves fall among the chunks, and say where
each answered place comes from.

    python jobs/diagnose.py --results runs/smollm2-results/eval/results.json \\
        --data runs/smollm2-results/data/test.parquet --tokenizer smollm2-135m --chunk-tokens 128

Writes ``layout.md`` and ``layout.json`` next to the results: per method and length, the accuracy (Wilson 95% CI)
on questions whose person moved once, several times inside one chunk, or in different chunks (whose order only
the doc ids carry); and the share of answers naming the person's latest place, an earlier place of theirs, another
person's place or a place not in the context, beside a reader that picks one of the context's places at random.
With ``--checkpoint`` it also measures the fact signal by length (``fact_signal.md``): the CE on the supporting
sentence's tokens against all other context tokens before and after encoding, and the token weights on each. Without
``--results`` it measures only that, into ``--output``:

    python jobs/diagnose.py --checkpoint runs/smollm2-results/best --data runs/dev-lengths/dev.parquet \
        --output runs/smollm2-results/fact-signal --signal-records 8

Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perk_ray.cli import run_cli
from perk_ray.data import read_records
from perk_ray.errors import InputError
from perk_ray.evaluation.diagnostics import SOURCES, accuracy_by_layout, answer_sources
from perk_ray.model import load_tokenizer


def fact_signal_lines(checkpoint: str, records: list, per_length: int) -> list[str]:
    """The fact signal per length as a markdown table."""
    from perk_ray.engine import PerkEngine
    from perk_ray.evaluation.diagnostics import SIGNAL_KEYS, fact_signal_by_length

    means = fact_signal_by_length(PerkEngine.from_checkpoint(checkpoint), records, per_length)
    lines = [f"## Fact signal by length (mean over {per_length} records; CE in nats on the supporting sentence's "
             "tokens vs all other context tokens, before/after encoding; token weights on each)", "",
             "| length | " + " | ".join(SIGNAL_KEYS) + " |", "|---" * (len(SIGNAL_KEYS) + 1) + "|"]
    for length, row in means.items():
        lines.append(f"| {length} | " + " | ".join(f"{row[k]:.3f}" for k in SIGNAL_KEYS) + " |")
    return lines


def source_lines(table: list[dict]) -> list[str]:
    """Where the answered places come from, as a markdown table."""
    lines = ["## Where the answered place comes from (% of answers)", "",
             "| method | length | n | " + " | ".join(SOURCES) + " | most frequent answer |",
             "|---" * (len(SOURCES) + 4) + "|"]
    for e in table:
        top = "" if e["top_answer"] is None else f"{e['top_answer'][:24]} ({100 * e['top_share']:.0f}%)"
        lines.append(f"| {e['method']} | {e['length']} | {e['n']} | "
                     + " | ".join(f"{100 * e[s]:.0f}" for s in SOURCES) + f" | {top} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, help="results.json of jobs/evaluate.py")
    parser.add_argument("--data", required=True, help="the evaluated records (Parquet/JSONL)")
    parser.add_argument("--tokenizer", default="smollm2-135m", help="tokenizer that chunked the context")
    parser.add_argument("--chunk-tokens", type=int, default=128, help="inner.chunk_tokens of the checkpoint")
    parser.add_argument("--pack-segments", action="store_true", help="the checkpoint has inner.pack_segments=true")
    parser.add_argument("--metric", default="babilong", choices=("babilong", "exact_match"))
    parser.add_argument("--checkpoint", help="meta-checkpoint: also measure the fact signal by length")
    parser.add_argument("--signal-records", type=int, default=8, help="records per length for the fact signal")
    parser.add_argument("--output", type=Path, help="directory for the tables (default: next to --results)")
    args = parser.parse_args()
    if args.results is None and args.checkpoint is None:
        raise InputError("give --results (the layout split), --checkpoint (the fact signal) or both")
    if args.results is not None and not args.results.is_file():
        raise InputError(f"--results {args.results}: no such file")
    if args.signal_records < 1:
        raise InputError(f"--signal-records must be at least 1, got {args.signal_records}")
    output = args.output or (args.results.parent if args.results is not None else None)
    if output is None:
        raise InputError("--output is needed when no --results is given")
    output.mkdir(parents=True, exist_ok=True)
    records = read_records(args.data)
    if args.results is not None:
        write_layout(args, records, output)
    if args.checkpoint:
        lines = fact_signal_lines(args.checkpoint, records, args.signal_records)
        (output / "fact_signal.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
        print(f"wrote {output / 'fact_signal.md'}")
    return 0


def write_layout(args: argparse.Namespace, records: list, output: Path) -> None:
    """The accuracy split by fact layout and the answers' sources, as layout.md and layout.json in ``output``."""
    rows = json.loads(args.results.read_text())["examples"]
    table = accuracy_by_layout(rows, records, load_tokenizer(args.tokenizer), args.chunk_tokens, args.metric,
                               args.pack_segments)
    sources = answer_sources(rows, records)
    chunking = f"{args.chunk_tokens}-token chunks" + (", segments packed" if args.pack_segments else "")
    lines = [f"# {args.metric} accuracy by where the person's moves fall ({chunking})", "",
             "| method | length | layout | n | accuracy % [95% CI] |", "|---|---|---|---|---|"]
    lines += [f"| {e['method']} | {e['length']} | {e['layout']} | {e['n']} | {100 * e['accuracy']:.1f} "
              f"[{100 * e['low']:.1f}, {100 * e['high']:.1f}] |" for e in table]
    lines += ["", *source_lines(sources)]
    (output / "layout.md").write_text("\n".join(lines) + "\n")
    (output / "layout.json").write_text(json.dumps({"layout": table, "sources": sources}, indent=2) + "\n")
    print("\n".join(lines))
    print(f"wrote {output / 'layout.md'}")


if __name__ == "__main__":
    run_cli(main)
