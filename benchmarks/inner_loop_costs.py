"""Where the inner loop's time goes, and what code changes (benchmarks/prototypes.py) buy or bought, same run.

    python benchmarks/inner_loop_costs.py            # about 5 minutes on 2 loaded cores
    python benchmarks/inner_loop_costs.py --quick    # seconds (smoke test)

1. Profile: ``torch.profiler`` over one encoding (first-order inner loop) and one meta-step (second-order); the
   top operators by self time, the number of operator calls, and the share of wall time not spent in operators.
2. Variants: encoding and meta-step wall time of the current code against each variant (the former code of an
   applied change, or a proposal; monkeypatched in this process), interleaved round by round, medians; the outputs
   are checked against the current code in float64 (exactly the same computation up to rounding).
3. Configuration levers, same run: encoding micro-batch size (``inner.encode_micro_batch_chunks``).
4. Threads: encoding in fresh subprocesses with 1 torch thread, 2 threads (torch's default here) and 2 threads with
   ``OMP_WAIT_POLICY=PASSIVE`` (must be set before torch loads), interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from typing import Any

from bench_utils import (ROOT, load_average, machine_info, machine_line, median, pyplot, quiet_warnings, results_path,
                         save_figure, setup_torch, spread, table, timed, write_results)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--encode-tokens", type=int, default=2048)
    p.add_argument("--meta-tokens", type=int, default=512)
    p.add_argument("--meta-tasks", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--thread-rounds", type=int, default=3)
    p.add_argument("--micro-batches", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out-dir", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)  # thread experiment subprocess
    args = p.parse_args(argv)
    if args.quick:
        args.encode_tokens, args.meta_tokens, args.meta_tasks, args.rounds = 512, 128, 1, 1
        args.thread_rounds, args.micro_batches = 0, [4, 8]
    return args


def document(tokens: int, name: str = "costs") -> str:
    from serving.loadtest import make_document

    return make_document(name, tokens + 64)[:tokens]


def child(spec: str) -> None:
    """Thread experiment: print the median encode time of a fresh process (env already set by the parent)."""
    threads, tokens, repeats = (int(x) for x in spec.split(","))
    import torch

    torch.set_num_threads(threads)
    quiet_warnings()
    from perk_ray.config import load_config
    from perk_ray.engine import PerkEngine

    engine = PerkEngine.from_config(load_config("tiny", []))
    text = document(tokens)
    engine.encode(text)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        engine.encode(text)
        times.append(time.perf_counter() - start)
    print(json.dumps({"seconds": median(times), "all": times}))


def thread_experiment(args: argparse.Namespace) -> list[dict]:
    cases = {"1 thread": ({}, 1), "2 threads (default OpenMP wait policy)": ({}, 2),
             "2 threads, OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, 2)}
    times: dict[str, list[float]] = {k: [] for k in cases}
    tokens = min(args.encode_tokens, 2048)
    for _ in range(args.thread_rounds):
        for name, (env, threads) in cases.items():
            full_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
            full_env.update(env)
            out = subprocess.run([sys.executable, __file__, "--child", f"{threads},{tokens},3"], env=full_env,
                                 cwd=ROOT, capture_output=True, text=True, timeout=600)
            line = [x for x in out.stdout.splitlines() if x.startswith("{")]
            if not line:
                raise RuntimeError(f"thread experiment child failed: {out.stderr[-2000:]}")
            times[name].append(json.loads(line[-1])["seconds"])
    one = median(times["1 thread"])
    return [{"case": k, "tokens": tokens, "seconds": median(v), "all": v, "spread": spread(v),
             "vs_1_thread": median(v) / one} for k, v in times.items()]


def profile_once(fn, rows: int = 15) -> dict[str, Any]:
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    wall = time.perf_counter() - start
    events = prof.key_averages()
    top_level = sum(e.cpu_time_total for e in prof.events() if e.cpu_parent is None) / 1e6
    total_self = sum(e.self_cpu_time_total for e in events) / 1e6
    calls = sum(e.count for e in events if e.key.startswith("aten::"))
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:rows]
    return {"wall_s_under_profiler": wall, "operator_self_s": total_self, "top_level_op_s": top_level,
            "aten_calls": calls,
            "top": [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "calls": e.count,
                     "self_share": e.self_cpu_time_total / 1e6 / total_self} for e in top],
            "table": events.table(sort_by="self_cpu_time_total", row_limit=rows)}


def python_profile(fn, rows: int = 12) -> list[dict]:
    """cProfile of one call: cumulative time of perk_ray/peft/transformers/torch functions worth naming."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof)
    total = max(v[3] for v in stats.stats.values())
    interesting = []
    for (filename, line, func), (_, nc, tt, ct, _) in stats.stats.items():
        short = filename.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
        interesting.append({"function": f"{short}:{line}({func})", "calls": nc, "self_s": tt, "cumulative_s": ct,
                            "cumulative_share": ct / total})
    interesting.sort(key=lambda x: -x["self_s"])
    return interesting[:rows]


def float64_check(proto) -> dict[str, float]:
    """Max |difference| of the adapted memory (encode) and of the meta-gradient, prototype vs current, float64."""

    from perk_ray.config import load_config
    from perk_ray.engine import PerkEngine
    from perk_ray.meta import prepare_task, task_loss

    cfg = load_config("tiny", ["model.dtype=float64", "inner.learn_lrs=true"])
    engine = PerkEngine.from_config(cfg)
    text = document(300, "f64")

    def run():
        memory = engine.encode(text)
        task = prepare_task(engine.base.tokenizer, cfg, text, ["What is the code?"], ["123"], doc_ids="in_order")
        engine.meta.zero_grad(set_to_none=True)
        task_loss(engine.base, engine.meta, task, cfg).loss.backward()
        grads = {n: p.grad.detach().clone() for n, p in engine.meta.named_parameters() if p.grad is not None}
        return memory.params, grads

    ref_mem, ref_grad = run()
    with proto():
        mem, grad = run()
    return {"encode_max_abs_diff": max(float((mem[n] - ref_mem[n]).abs().max()) for n in ref_mem),
            "meta_grad_max_abs_diff": max(float((grad[n] - ref_grad[n]).abs().max()) for n in ref_grad),
            "meta_grad_max_abs": max(float(g.abs().max()) for g in ref_grad.values())}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child:
        child(args.child)
        return {}
    setup_torch(args.threads)
    quiet_warnings()

    import prototypes as P
    from perk_ray.config import load_config
    from perk_ray.engine import PerkEngine
    from perk_ray.meta import build_outer_optimizer, meta_step, prepare_task
    from perk_ray.profiling import PeakMemory

    info = machine_info(args.threads)
    print(f"machine: {machine_line(info)}")
    wall0 = time.perf_counter()
    cfg = load_config("tiny", [])  # eager attention, K=4, T=2, 64-token chunks, micro-batches of 4
    engine = PerkEngine.from_config(cfg)
    text = document(args.encode_tokens)
    tasks = [prepare_task(engine.base.tokenizer, cfg, document(args.meta_tokens, f"meta-{i}"),
                          ["What is the code of record #0?"], ["123456"], doc_ids="in_order")
             for i in range(args.meta_tasks)]
    optimizer, scheduler = build_outer_optimizer(engine.meta, cfg, 10_000)

    def encode():
        engine.encode(text)

    def step():
        meta_step(engine.base, engine.meta, tasks, cfg, optimizer, scheduler)

    encode()
    step()

    # 1. profiles of the current code
    profiles = {"encode": profile_once(encode)}
    if not args.quick:
        profiles["meta_step"] = profile_once(step)
    pyprof = {"encode": python_profile(encode)}
    for name, p in profiles.items():
        print(f"\nprofile of one {name} (current code): {p['aten_calls']} aten calls, operators' self time "
              f"{p['operator_self_s']:.2f} s of {p['wall_s_under_profiler']:.2f} s wall under the profiler")
        print(p["table"])

    # 2. prototypes, interleaved with the current code
    protos = {k: v for k, v in P.PROTOTYPES.items() if k.startswith("combined")} if args.quick else P.PROTOTYPES
    variants: dict[str, Any] = {"current": contextlib.nullcontext, **protos}
    enc_times: dict[str, list[float]] = {k: [] for k in variants}
    step_times: dict[str, list[float]] = {k: [] for k in variants}
    enc_cpu: dict[str, list[float]] = {k: [] for k in variants}
    step_cpu: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(args.rounds):
        for name in (list(variants) if r % 2 == 0 else list(reversed(variants))):
            with variants[name]():
                wall, cpu, _ = timed(encode)
                enc_times[name].append(wall)
                enc_cpu[name].append(cpu)
                wall, cpu, _ = timed(step)
                step_times[name].append(wall)
                step_cpu[name].append(cpu)
    checks = {name: float64_check(make) for name, make in protos.items()}
    proto_rows = []
    for name in variants:
        row = {"variant": name, "encode_s": median(enc_times[name]), "encode_spread": spread(enc_times[name]),
               "meta_step_s": median(step_times[name]), "meta_spread": spread(step_times[name])}
        row["encode_speedup"] = median(enc_times["current"]) / row["encode_s"]
        row["meta_speedup"] = median(step_times["current"]) / row["meta_step_s"]
        row["encode_cpu_speedup"] = median(enc_cpu["current"]) / median(enc_cpu[name])
        row["meta_cpu_speedup"] = median(step_cpu["current"]) / median(step_cpu[name])
        row.update(checks.get(name, {}))
        proto_rows.append(row)

    # 3. micro-batch size (a configuration lever): time and peak memory of encoding, same run
    mb_engines = {mb: PerkEngine(cfg.model_copy(update={"inner": cfg.inner.model_copy(
        update={"encode_micro_batch_chunks": mb})}), engine.base, engine.meta) for mb in args.micro_batches}
    mb_times: dict[int, list[float]] = {mb: [] for mb in mb_engines}
    mb_cpu: dict[int, list[float]] = {mb: [] for mb in mb_engines}
    mb_peak = {}
    for mb, e in mb_engines.items():
        with PeakMemory("cpu") as mem:
            e.encode(text)
        mb_peak[mb] = mem.peak_mib
    for r in range(args.rounds):
        for mb in (list(mb_engines) if r % 2 == 0 else list(reversed(mb_engines))):
            wall, cpu, _ = timed(mb_engines[mb].encode, text)
            mb_times[mb].append(wall)
            mb_cpu[mb].append(cpu)
    base_mb = args.micro_batches[0]
    mb_rows = [{"micro_batch_chunks": mb, "encode_s": median(v), "spread": spread(v),
                "speedup": median(mb_times[base_mb]) / median(v),
                "cpu_speedup": median(mb_cpu[base_mb]) / median(mb_cpu[mb]), "peak_mib": mb_peak[mb]}
               for mb, v in mb_times.items()]

    # 4. threads (subprocesses)
    thread_rows = thread_experiment(args) if args.thread_rounds else []

    wall = time.perf_counter() - wall0
    chunks = -(-args.encode_tokens // cfg.inner.chunk_tokens)
    md = ["## Inner loop: profile and measured effect of the proposed changes\n",
          f"Machine: {machine_line(info)}; load average at end {load_average()}. Tiny preset (eager attention, "
          f"K={cfg.inner.steps}, T={cfg.inner.truncation}, {cfg.inner.chunk_tokens}-token chunks, micro-batches of "
          f"{cfg.inner.micro_batch_chunks}). Encoding: {args.encode_tokens} tokens ({chunks} chunks). Meta-step: "
          f"{args.meta_tasks} task(s) of {args.meta_tokens} tokens. Medians of {args.rounds} interleaved rounds.\n",
          "### Profile of the current code\n",
          table([{"run": k, "wall": v["wall_s_under_profiler"], "ops": v["operator_self_s"],
                  "calls": v["aten_calls"], "top": ", ".join(f"{t['op']} {100 * t['self_share']:.0f}%"
                                                             for t in v["top"][:5])}
                 for k, v in profiles.items()],
                [("run", "run"), ("wall", "wall s (profiled)"), ("ops", "operator self s"),
                 ("calls", "aten calls"), ("top", "top operators by self time")]),
          "\nPython functions with the most self time (cProfile, one encoding):\n",
          table(pyprof["encode"][:8], [("function", "function"), ("calls", "calls"), ("self_s", "self s"),
                                       ("cumulative_s", "cumulative s")]),
          "\n### Prototypes (benchmarks/prototypes.py) against the current code\n",
          table(proto_rows, [("variant", "variant"), ("encode_s", "encode s"), ("encode_speedup", "encode speed-up"),
                             ("encode_cpu_speedup", "(CPU time)"), ("meta_step_s", "meta-step s"),
                             ("meta_speedup", "meta-step speed-up"), ("meta_cpu_speedup", "(CPU time)"),
                             ("encode_max_abs_diff", "float64 max diff, memory"),
                             ("meta_grad_max_abs_diff", "float64 max diff, meta-grad")]),
          "\n### Micro-batch size (encoding)\n",
          table(mb_rows, [("micro_batch_chunks", "inner.encode_micro_batch_chunks"), ("encode_s", "encode s"),
                          ("speedup", f"speed-up vs {base_mb}"), ("cpu_speedup", "(CPU time)"),
                          ("peak_mib", "peak MiB")])]
    if thread_rows:
        md += ["\n### Torch threads (fresh processes, encoding)\n",
               table(thread_rows, [("case", "case"), ("tokens", "tokens"), ("seconds", "encode s"),
                                   ("spread", "spread"), ("vs_1_thread", "time vs 1 thread")])]
    markdown = "\n".join(md)
    print()
    print(markdown)
    stem = results_path("inner_loop_costs", args.quick, args.out_dir)
    payload = {"benchmark": "inner_loop_costs", "args": vars(args), "machine": info,
               "profiles": {k: {kk: vv for kk, vv in v.items() if kk != "table"} for k, v in profiles.items()},
               "python_profile": pyprof, "prototypes": proto_rows,
               "prototype_times": {"encode": enc_times, "meta_step": step_times, "encode_cpu": enc_cpu,
                                   "meta_step_cpu": step_cpu},
               "micro_batch": mb_rows, "threads": thread_rows, "wall_seconds": wall}
    write_results(stem, payload, markdown)
    for name, p in profiles.items():
        stem.with_name(stem.name + f"_profile_{name}.txt").write_text(p["table"])
    plot(proto_rows, mb_rows, thread_rows, stem.with_suffix(".png"), info)
    print(f"\nwrote {stem}.json/.md/.png in {wall:.0f} s")
    return payload


def plot(proto_rows, mb_rows, thread_rows, path, info) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    names = [r["variant"] for r in proto_rows]
    y = range(len(names))
    axes[0].barh([i + 0.2 for i in y], [r["encode_speedup"] for r in proto_rows], 0.4, label="encode")
    axes[0].barh([i - 0.2 for i in y], [r["meta_speedup"] for r in proto_rows], 0.4, label="meta-step")
    axes[0].set_yticks(list(y), names, fontsize=7)
    axes[0].axvline(1.0, color="k", lw=0.8)
    axes[0].set(xlabel="speed-up vs current code (median)", title="prototypes")
    axes[0].legend(fontsize=8)
    axes[1].plot([r["micro_batch_chunks"] for r in mb_rows], [r["encode_s"] for r in mb_rows], "o-", label="time")
    ax2 = axes[1].twinx()
    ax2.plot([r["micro_batch_chunks"] for r in mb_rows], [r["peak_mib"] for r in mb_rows], "s--", color="C1",
             label="peak MiB")
    axes[1].set(xscale="log", xlabel="inner.encode_micro_batch_chunks", ylabel="encode seconds",
                title="micro-batch size")
    ax2.set_ylabel("peak MiB")
    if thread_rows:
        axes[2].bar(range(len(thread_rows)), [r["seconds"] for r in thread_rows])
        axes[2].set_xticks(range(len(thread_rows)), [r["case"].replace(" (", "\n(").replace(", ", ",\n")
                                                     for r in thread_rows], fontsize=7)
        axes[2].set(ylabel="encode seconds", title="torch threads (fresh processes)")
    save_figure(fig, path, f"inner loop, tiny preset, {info['cores']}-core CPU (shared, loaded)")


if __name__ == "__main__":
    main()
