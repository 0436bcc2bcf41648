"""Meta-step time, peak memory and achieved FLOP/s versus inner steps K and truncation T, per strategy and world size.

    python benchmarks/meta_step.py            # about 4-5 minutes on 2 loaded cores
    python benchmarks/meta_step.py --quick    # seconds (smoke test)

Each configuration is a ``perk_ray.train.loop.MetaTrainer`` (tiny preset, eager attention: the meta-step's double
backward needs it) on synthetic key-value records (``--context-tokens`` per record, ``--batch`` records per global
batch). World size 1 runs in this process; world size 2 runs two gloo ranks with ``torch.multiprocessing.spawn``
(as tests/train/test_distributed_equivalence.py), one torch thread per rank, so 2 ranks use both cores.

Times: the wall time of a step (``StepMetrics.step_seconds``; at world size 2 the slower rank) and the CPU time of
the stepping thread (``time.thread_time``; all of torch's work runs there with 1 thread; the slower rank). On a
shared machine the wall time mostly measures how much of a core the process got; the CPU time is the work done.

Order and statistics: all configurations of one world size are built first and stepped round-robin (one step each
per round), so the machine's load hits them alike; the median over rounds is reported. World size 1 is measured
before and after world size 2 (A B A) and both halves are pooled; the halves' medians are kept in the JSON.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` counts one meta-step per (K, T) (matmuls, i.e. mm/bmm/addmm,
forward, backward and double backward) and, separately, the first-order inner loop alone (``adapt`` with
``create_graph=False``, what encoding runs). Achieved FLOP/s = counted FLOPs / median wall time, against a plain
float32 matmul roof measured in the same run and the same way: FLOPs per CPU second of a rank's stepping thread
against a 1-thread matmul's FLOPs per CPU second (the wall-clock versions are in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_utils import (load_average, machine_info, machine_line, matmul_roof, median, pyplot, quiet_warnings,
                         results_path, save_figure, setup_torch, spread, table, timed, write_results)

K_SWEEP = [(1, 1), (2, 1), (4, 1), (8, 1)]
T_SWEEP = [(4, 0), (4, 2), (4, 4)]
WIDE = ["model.tiny.hidden_size=256", "model.tiny.num_layers=4", "model.tiny.num_heads=8", "model.tiny.num_kv_heads=4",
        "model.tiny.intermediate_size=1024"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="two small points, 1 round: seconds (smoke test)")
    p.add_argument("--context-tokens", type=int, default=512)
    p.add_argument("--batch", type=int, default=4, help="records per global batch (split over the ranks)")
    p.add_argument("--rounds", type=int, default=3, help="timed meta-steps per configuration and world-size phase")
    p.add_argument("--world-sizes", type=int, nargs="+", default=None, help="default 1 2 (--quick: 1)")
    p.add_argument("--strategies", nargs="+", default=["ddp", "fsdp"])
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (see benchmarks/bench_utils.py)")
    p.add_argument("--no-wide", action="store_true", help="skip the inner-loop FLOP/s of the wider model")
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    args.points = K_SWEEP + T_SWEEP
    if args.quick:  # world size 1 only unless asked (spawning 2 ranks costs ~30 s of start-up here)
        args.points, args.context_tokens, args.batch, args.rounds, args.no_wide = [(1, 1), (2, 1)], 128, 2, 1, True
        args.world_sizes = args.world_sizes or [1]
    args.world_sizes = args.world_sizes or [1, 2]
    return args


def records(n: int, tokens: int) -> list[dict[str, Any]]:
    from serving.loadtest import make_document

    out = []
    for i in range(n):
        doc = make_document(f"meta-{i}", tokens + 64)[:tokens]
        out.append({"id": f"r{i}", "context": [doc], "question": f"What is the code of meta-{i} #0?",
                    "answer": [doc.split(" is ", 1)[1][:6]], "support": []})
    return out


def config(strategy: str, k: int, t: int, batch: int, extra: list[str] = ()):
    from perk_ray.config import load_config

    return load_config("tiny", [f"inner.steps={k}", f"inner.truncation={t}", f"outer.batch_size={batch}",
                                f"train.strategy={strategy}", "train.max_steps=100000",
                                "model.attn_implementation=eager", *extra])


def step_schedule(args: argparse.Namespace, world: int) -> list[tuple[str, int, int]]:
    """(strategy, K, T) of every configuration this world size measures."""
    if world == 1:  # fsdp at world size 1 shards nothing: the same code path as ddp, checked at one point only
        extra = [("fsdp", 4, 2)] if "fsdp" in args.strategies and (4, 2) in args.points else []
        return [("ddp", k, t) for k, t in args.points] + extra
    return [(s, k, t) for s in args.strategies for k, t in args.points]


def run_phase(args: argparse.Namespace, world: int, trainers: dict | None = None) -> tuple[dict, list[dict]]:
    """Build (or reuse) the trainers of this world size, warm each up once, then ``rounds`` round-robin steps."""
    from perk_ray.train.loop import MetaTrainer

    recs = records(max(8, 2 * args.batch), args.context_tokens)
    if trainers is None:
        trainers = {}
        for strategy, k, t in step_schedule(args, world):
            trainers[(strategy, k, t)] = MetaTrainer(config(strategy, k, t, args.batch), recs, [])
        for trainer in trainers.values():
            trainer.run_step()  # warm-up
    samples = []
    for r in range(args.rounds):
        for (strategy, k, t), trainer in trainers.items():
            cpu0 = time.thread_time()
            m = trainer.run_step()
            samples.append({"world": world, "strategy": strategy, "K": k, "T": t, "round": r,
                            "seconds": m.step_seconds, "cpu_seconds": time.thread_time() - cpu0,
                            "peak_mib": m.peak_mib, "tokens_per_s": m.tokens_per_s})
    return trainers, samples


def _worker(rank: int, port: int, args: argparse.Namespace, out: str) -> None:
    import torch
    import torch.distributed as dist

    quiet_warnings()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        _, samples = run_phase(args, 2)
        Path(f"{out}.{rank}").write_text(json.dumps(samples))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_two_ranks(args: argparse.Namespace) -> list[dict]:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "samples.json")
        mp.spawn(_worker, args=(port, args, out), nprocs=2, join=True)
        ranks = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(2)]
    merged = []
    for a, b in zip(*ranks):  # same schedule on both ranks: the step ends when the slower rank is done
        merged.append({**a, "seconds": max(a["seconds"], b["seconds"]),
                       "cpu_seconds": max(a["cpu_seconds"], b["cpu_seconds"]),
                       "cpu_seconds_ranks": [a["cpu_seconds"], b["cpu_seconds"]]})
    return merged


def count_flops(fn) -> tuple[int, dict[str, int]]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    per_op = {str(k): int(v) for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return counter.get_total_flops(), per_op


def inner_loop_flops(args: argparse.Namespace, extra: list[str], label: str, repeats: int) -> dict[str, Any]:
    """FLOPs and achieved FLOP/s of the first-order inner loop (encoding) on one record."""

    from perk_ray.inner_loop import adapt
    from perk_ray.meta import MetaParams
    from perk_ray.model import load_base_model
    from perk_ray.train.loop import record_task

    cfg = config("ddp", 4, 2, 1, extra)
    base = load_base_model(cfg.model, cfg.lora)
    base.model.eval()
    meta = MetaParams.from_base(base, cfg)
    task = record_task(base, cfg, records(1, args.context_tokens)[0], 0, 0, 0)

    def run():
        adapt(base, meta.init_params(), meta.lrs(), meta.weighting, task.chunks, cfg.inner, create_graph=False)

    run()
    flops, per_op = count_flops(run)
    runs = [timed(run) for _ in range(repeats)]
    wall, cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
    params = sum(p.numel() for n, p in base.model.named_parameters() if "lora_" not in n)
    return {"model": label, "parameters": params, "hidden_size": cfg.model.tiny.hidden_size, "K": cfg.inner.steps,
            "tokens": task.chunks.num_context_tokens, "flops": flops, "per_op": per_op, "seconds": wall,
            "cpu_seconds": cpu, "seconds_all": [r[0] for r in runs], "cpu_seconds_all": [r[1] for r in runs],
            "flops_per_s": flops / wall, "flops_per_cpu_s": flops / cpu}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_torch(args.threads)
    quiet_warnings()
    info = machine_info(args.threads)
    print(f"machine: {machine_line(info)}")
    wall0 = time.perf_counter()
    roof_budget = 0.2 if args.quick else 1.0
    roof_sizes = (256,) if args.quick else (512, 1024)
    roofs = {"1_start": matmul_roof(1, roof_sizes, budget_s=roof_budget)}
    if 2 in args.world_sizes:
        roofs["2_start"] = matmul_roof(2, roof_sizes, budget_s=roof_budget)

    samples: list[dict] = []
    trainers = None
    halves = [] if 1 not in args.world_sizes else (["A", "A2"] if 2 in args.world_sizes else ["A"])
    if "A" in halves:
        trainers, s = run_phase(args, 1)
        samples += [{**x, "phase": "A"} for x in s]
        print(f"world size 1, phase A: {len(s)} meta-steps ({time.perf_counter() - wall0:.0f} s)", flush=True)
    if 2 in args.world_sizes:
        s = run_two_ranks(args)
        samples += [{**x, "phase": "B"} for x in s]
        print(f"world size 2: {len(s)} meta-steps ({time.perf_counter() - wall0:.0f} s)", flush=True)
    if "A2" in halves:
        trainers, s = run_phase(args, 1, trainers)
        samples += [{**x, "phase": "A2"} for x in s]
        print(f"world size 1, phase A2: {len(s)} meta-steps ({time.perf_counter() - wall0:.0f} s)", flush=True)

    # FLOPs of one meta-step per (K, T) (world size 1: the whole global batch) and of the inner loop alone
    flops = {}
    if trainers is None:
        from perk_ray.train.loop import MetaTrainer

        trainers = {("ddp", k, t): MetaTrainer(config("ddp", k, t, args.batch),
                                               records(max(8, 2 * args.batch), args.context_tokens), [])
                    for k, t in args.points}
    for (strategy, k, t), trainer in trainers.items():
        if strategy == "ddp":
            flops[(k, t)] = count_flops(trainer.run_step)
    inner = [inner_loop_flops(args, [], "tiny (hidden 64, 2 layers)", 3 if args.quick else 5)]
    if not args.no_wide:
        inner.append(inner_loop_flops(args, WIDE, "wider (hidden 256, 4 layers)", 3))
    roofs["1_end"] = matmul_roof(1, roof_sizes, budget_s=roof_budget)
    if 2 in args.world_sizes:
        roofs["2_end"] = matmul_roof(2, roof_sizes, budget_s=roof_budget)
    roof1 = median([roofs["1_start"]["flops_per_s"], roofs["1_end"]["flops_per_s"]])
    roof_cpu = max(roofs["1_start"]["flops_per_cpu_s"], roofs["1_end"]["flops_per_cpu_s"])
    roof2 = median([roofs["2_start"]["flops_per_s"], roofs["2_end"]["flops_per_s"]]) if "2_start" in roofs else None

    rows = []
    keys = sorted({(x["world"], x["strategy"], x["K"], x["T"]) for x in samples})
    for world, strategy, k, t in keys:
        mine = [x for x in samples if (x["world"], x["strategy"], x["K"], x["T"]) == (world, strategy, k, t)]
        secs = [x["seconds"] for x in mine]
        f = flops.get((k, t), (float("nan"), {}))[0]
        cpu = median([x["cpu_seconds"] for x in mine])
        wall_roof = roof1 * world if world == 1 or roof2 is None else roof2
        row = {"world": world, "strategy": strategy, "K": k, "T": t, "seconds": median(secs), "spread": spread(secs),
               "cpu_seconds": cpu, "peak_mib": median([x["peak_mib"] for x in mine]),
               "tokens_per_s": median([x["tokens_per_s"] for x in mine]), "gflop_per_step": f / 1e9,
               # per rank, per CPU second of its stepping thread, against the matmul roof measured the same way
               "gflops_per_cpu_s": f / world / cpu / 1e9, "roof_fraction": f / world / cpu / roof_cpu,
               "roof_percent": 100 * f / world / cpu / roof_cpu,
               # aggregate per wall second, against the matmul roof at `world` threads (load-dependent)
               "gflops_wall": f / median(secs) / 1e9, "wall_roof_percent": 100 * f / median(secs) / wall_roof,
               "n": len(secs)}
        for phase in ("A", "A2", "B"):
            ps = [x["seconds"] for x in mine if x["phase"] == phase]
            if ps:
                row[f"seconds_{phase}"] = median(ps)
                row[f"cpu_seconds_{phase}"] = median([x["cpu_seconds"] for x in mine if x["phase"] == phase])
        rows.append(row)
    by = {(r["world"], r["strategy"], r["K"], r["T"]): r for r in rows}
    for r in rows:
        one = by.get((1, "ddp", r["K"], r["T"]))
        r["speedup_vs_1"] = one["seconds"] / r["seconds"] if one else float("nan")
        r["cpu_speedup_vs_1"] = one["cpu_seconds"] / r["cpu_seconds"] if one else float("nan")
    for x in inner:
        x["roof_fraction"] = x["flops_per_cpu_s"] / roof_cpu
        x["roof_percent"] = 100 * x["roof_fraction"]
        x["gflop"], x["gflops"] = x["flops"] / 1e9, x["flops_per_cpu_s"] / 1e9
    wall = time.perf_counter() - wall0

    md = ["## Meta-step: time, memory and FLOP/s versus K, T, strategy and world size\n",
          f"Machine: {machine_line(info)}; load average at end {load_average()}. Tiny preset (eager attention), "
          f"{args.batch} records of {args.context_tokens} tokens per global batch, "
          f"{args.threads} torch thread per rank. Median of {args.rounds} round-robin steps per configuration"
          f"{' and world-size-1 phase (A B A)' if len(halves) == 2 else ''}. CPU s: CPU time of the stepping "
          f"thread (the slower rank at world size 2), the work done, which the load inflates far less than the wall "
          f"time. FLOP/s per CPU second of a rank against a plain matmul measured the same way in this run: "
          f"{roof_cpu / 1e9:.1f} GFLOP per CPU second (per wall second: {roof1 / 1e9:.1f} GFLOP/s at 1 thread"
          + (f", {roof2 / 1e9:.1f} at 2 threads" if roof2 else "") + ").\n",
          table(rows, [("world", "world size"), ("strategy", "strategy"), ("K", "K"), ("T", "T"),
                       ("seconds", "wall s / step"), ("spread", "spread"), ("speedup_vs_1", "wall speed-up"),
                       ("cpu_seconds", "CPU s / step"), ("cpu_speedup_vs_1", "CPU speed-up vs 1 rank"),
                       ("peak_mib", "peak MiB / rank"), ("tokens_per_s", "context tok/s (wall)"),
                       ("gflop_per_step", "GFLOP / step"), ("gflops_per_cpu_s", "GFLOP per CPU s per rank"),
                       ("roof_percent", "% of roof")]),
          "\nInner loop alone (first-order, K=4, one record; what encoding runs):\n",
          table(inner, [("model", "model"), ("parameters", "base params"), ("tokens", "tokens"),
                        ("seconds", "wall s"), ("cpu_seconds", "CPU s"), ("gflop", "GFLOP"),
                        ("gflops", "GFLOP per CPU s"), ("roof_percent", "% of roof")])]
    markdown = "\n".join(md)
    print()
    print(markdown)
    stem = results_path("meta_step", args.quick, args.out_dir)
    payload = {"benchmark": "meta_step", "args": {k: v for k, v in vars(args).items()}, "machine": info,
               "roofs": roofs, "roof_1_thread": roof1, "roof_2_threads": roof2, "roof_per_cpu_s": roof_cpu,
               "rows": rows, "samples": samples,
               "inner_loop": inner, "meta_step_flops": {f"K{k}_T{t}": {"total": v[0], "per_op": v[1]}
                                                        for (k, t), v in flops.items()},
               "wall_seconds": wall}
    write_results(stem, payload, markdown)
    plot(rows, stem.with_suffix(".png"), info)
    print(f"\nwrote {stem}.json/.md/.png in {wall:.0f} s")
    return payload


def plot(rows: list[dict], path, info: dict) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    series = sorted({(r["world"], r["strategy"]) for r in rows})
    for i, (world, strategy) in enumerate(series):
        mine = [r for r in rows if (r["world"], r["strategy"]) == (world, strategy)]
        label = f"{strategy}, {world} rank{'s' if world > 1 else ''}"
        ksweep = sorted((r["K"], r["cpu_seconds"], r["peak_mib"]) for r in mine if r["T"] == 1)
        tsweep = sorted((r["T"], r["cpu_seconds"], r["peak_mib"]) for r in mine if r["K"] == 4)
        style = "o-" if len(ksweep) > 1 else "o"
        if ksweep:
            axes[0].plot([x[0] for x in ksweep], [x[1] for x in ksweep], style, color=f"C{i}", label=label)
        if tsweep:
            axes[1].plot([x[0] for x in tsweep], [x[1] for x in tsweep], style, color=f"C{i}", label=label)
            axes[2].plot([x[0] for x in tsweep], [x[2] for x in tsweep], style, color=f"C{i}", label=label)
    axes[0].set(xlabel="inner steps K (T = 1)", ylabel="CPU seconds per meta-step (slower rank)",
                title="CPU time vs K")
    axes[1].set(xlabel="truncation T (K = 4)", ylabel="CPU seconds per meta-step (slower rank)",
                title="CPU time vs T")
    axes[2].set(xlabel="truncation T (K = 4)", ylabel="peak MiB per rank (sampled RSS)", title="memory vs T")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path, f"meta-step, tiny preset, 4 x 512-token records per global batch, {info['cores']}-core "
                "CPU (shared, loaded); CPU time of the stepping thread (wall times in the JSON)")


if __name__ == "__main__":
    main()
