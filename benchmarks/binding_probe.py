"""Does an inner loop bind each person to their place? A forced-choice probe of the memory, on qa1 contexts.

For a "Where is X?" record, the person's latest move is a sentence like "Mary went back to the kitchen.". After
encoding the context, the memory scores every place of the task's label set as the continuation of that sentence's
prefix ("Mary went back to the"), with no context in the prompt. The probe counts how often the latest place scores
highest, how often an earlier place of the person does, and how often another person's place does; "no memory" is
the base model's own prior. It needs no meta-training, so it compares inner optimisers and rates directly (ttl
settings: peft's LoRA init, constant rate, no token weighting), and it probes meta-checkpoints the same way.
Only train and dev records are used.

    python benchmarks/binding_probe.py --data runs/smollm2-results/data --records 24 \\
        --checkpoint runs/smollm2-long/best --output benchmarks/results/binding_probe
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from perk_ray.config import load_config
from perk_ray.data import TaskRecord, read_records
from perk_ray.engine import Memory, PerkEngine
from perk_ray.evaluation.diagnostics import WHERE_QUESTION, person_moves
from perk_ray.evaluation.metrics import wilson_ci
from perk_ray.evaluation.records import task_labels
from perk_ray.meta import MetaParams
from perk_ray.model import lora_forward

TTL_SETTINGS = {  # name: overrides of the smollm2-135m preset (K=2 as the preset unless named)
    "adamw lr 1e-3": ["inner.optimizer=adamw", "inner.lr=0.001"],
    "adamw lr 3e-3 (preset)": ["inner.optimizer=adamw", "inner.lr=0.003"],
    "adamw lr 1e-2": ["inner.optimizer=adamw", "inner.lr=0.01"],
    "sgd lr 1": ["inner.optimizer=sgd", "inner.lr=1.0"],
    "sgd lr 3": ["inner.optimizer=sgd", "inner.lr=3.0"],
    "sgd lr 10": ["inner.optimizer=sgd", "inner.lr=10.0"],
    "adamw K=4 lr 1e-3": ["inner.optimizer=adamw", "inner.lr=0.001", "inner.steps=4", "inner.truncation=2"],
    "adamw K=4 lr 3e-3": ["inner.optimizer=adamw", "inner.lr=0.003", "inner.steps=4", "inner.truncation=2"],
}
OUTCOMES = ("latest", "earlier", "other")


def probe_items(record: TaskRecord) -> tuple[str, str, list[str], set[str]] | None:
    """(prefix, latest place, the person's earlier places, everyone's places) of a "Where is X?" record."""
    match = WHERE_QUESTION.match(record.question.strip())
    if match is None:
        return None
    own, places = person_moves(record, match.group(1))
    if not own:
        return None
    last = own[-1]
    prefix = last.group(0)[: last.start(1) - last.start(0)].rstrip()
    return prefix, last.group(1), [m.group(1) for m in own[:-1]], places


@torch.no_grad()
def place_scores(engine: PerkEngine, memory: Memory, prefix: str, places: list[str]) -> dict[str, float]:
    """log P(" place" | prefix) under the memory, summed over the place's tokens."""
    tokenizer = engine.base.tokenizer
    prefix_ids = tokenizer.encode(prefix, add_special_tokens=False)
    scores = {}
    for place in places:
        place_ids = tokenizer.encode(" " + place, add_special_tokens=False)
        ids = torch.tensor([prefix_ids + place_ids], device=engine.base.device)
        logits = lora_forward(engine.base, memory.params, ids, torch.ones_like(ids)).logits.float()
        logp = torch.log_softmax(logits[0, len(prefix_ids) - 1:-1], dim=-1)
        scores[place] = float(logp.gather(1, torch.tensor(place_ids).unsqueeze(1)).sum())
    return scores


def probe(engine: PerkEngine, records: list[TaskRecord], encode: bool) -> dict:
    """Shares of OUTCOMES (Wilson 95%) and the mean margin of the latest place over the best other place."""
    outcomes, margins, start = [], [], time.perf_counter()
    for record in records:
        items = probe_items(record)
        if items is None:
            continue
        prefix, latest, earlier, _ = items
        memory = engine.encode(record.context) if encode else engine.initial_memory()
        scores = place_scores(engine, memory, prefix, task_labels(record.task))
        best = max(scores, key=scores.get)
        outcomes.append("latest" if best == latest else "earlier" if best in earlier else "other")
        margins.append(scores[latest] - max(v for k, v in scores.items() if k != latest))
    result = {"n": len(outcomes), "mean_margin": sum(margins) / len(margins),
              "seconds": time.perf_counter() - start}
    for outcome in OUTCOMES:
        estimate = wilson_ci([float(o == outcome) for o in outcomes])
        result[outcome] = {"mean": estimate.mean, "low": estimate.low, "high": estimate.high}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="a make_data/meta_train data directory")
    parser.add_argument("--records", type=int, default=24, help="dev records, then train records from the end")
    parser.add_argument("--checkpoint", action="append", default=[], help="meta-checkpoints to probe as well")
    parser.add_argument("--settings", default=",".join(TTL_SETTINGS), help="ttl settings to run")
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args()
    records = read_records(args.data / "dev.parquet")[: args.records]
    records += read_records(args.data / "train.parquet")[-(args.records - len(records)):] \
        if len(records) < args.records else []
    rows = {}
    cfg = load_config("smollm2-135m", ["inner.weighting=none"])
    base_engine = PerkEngine.from_config(cfg)
    rows["no memory (base prior)"] = probe(base_engine, records, encode=False)
    for name in args.settings.split(","):
        cfg = load_config("smollm2-135m", ["inner.weighting=none", *TTL_SETTINGS[name]])
        engine = PerkEngine(cfg, base_engine.base, MetaParams.from_base(base_engine.base, cfg))
        rows[f"ttl {name}"] = probe(engine, records, encode=True)
        print(name, json.dumps(rows[f"ttl {name}"]), flush=True)
    for checkpoint in args.checkpoint:
        engine = PerkEngine.from_checkpoint(checkpoint)
        rows[f"perk {checkpoint}"] = probe(engine, records, encode=True)
        print(checkpoint, json.dumps(rows[f"perk {checkpoint}"]), flush=True)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "binding_probe.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [f"# Binding probe: {len(records)} qa1 records (dev, then train), SmolLM2-135M bf16, K=2 unless named", "",
             "| memory | n | latest place ranks first % [95% CI] | an earlier place of the person % | "
             "another person's or no place % | mean log-prob margin of the latest place |", "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['n']} | {100 * row['latest']['mean']:.0f} [{100 * row['latest']['low']:.0f}, "
                     f"{100 * row['latest']['high']:.0f}] | {100 * row['earlier']['mean']:.0f} | "
                     f"{100 * row['other']['mean']:.0f} | {row['mean_margin']:+.2f} |")
    (args.output / "binding_probe.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
