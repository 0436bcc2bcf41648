"""PERK encoding + answering versus prompt-based answering, from 1k to 32k context tokens, in the same run.

    python benchmarks/encode_scaling.py            # 1k .. 32k tokens, 3 repeats (about 6 minutes on 2 loaded cores)
    python benchmarks/encode_scaling.py --quick    # a few seconds (smoke test)

Both sides use the same base model: the ``tiny`` preset (random Qwen2, byte tokenizer, so 1 character = 1 token)
with a long position window. PERK encodes the context into the LoRA memory (K first-order inner steps over
64-token chunks) and answers from a question-only prompt; the baseline puts the whole context in the prompt, runs
one forward over it and decodes greedily with the KV cache. The baseline is ``engine.generate`` with
``engine.initial_memory()``: the un-meta-trained LoRA B is zero, so that memory is exactly the plain base model.

Attention: ``sdpa`` (PyTorch's CPU flash kernel, O(n) memory) on both sides at every length; ``eager`` (the
preset's default, materialises the n x n attention matrix) on both sides up to ``--eager-max-tokens``. Encoding is
first-order, so sdpa is valid for it (only meta-training's double backward needs eager).

Timing: every round sweeps all lengths (ascending, then descending) and alternates the sides within a length, so
a changing load hits all points alike; the median of ``--repeats`` rounds is reported, as wall time and as CPU
time of the calling thread (1 torch thread: all torch work runs there, so CPU time is the work done; a loaded
machine inflates it much less than the wall time).
Peak memory: one extra run per side and length under ``perk_ray.profiling.PeakMemory`` (sampled RSS above the
level at entry, i.e. activations, KV cache and temporaries; the weights are loaded before).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench_utils import (load_average, loglog_slope, machine_info, machine_line, matmul_roof, median, pyplot,
                         quiet_warnings, results_path, save_figure, setup_torch, spread, table, timed, write_results)

QUESTION = "What is the code of record #0?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny lengths, 1 repeat: seconds (smoke test)")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 32768])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eager-max-tokens", type=int, default=8192,
                   help="largest length run with eager attention (its n x n matrices: 2.4 GiB at 8k, ~10 GiB at 16k)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (see benchmarks/bench_utils.py)")
    p.add_argument("--out-dir", default=None, help="default benchmarks/results")
    p.add_argument("overrides", nargs="*", help="extra config overrides, e.g. inner.steps=8")
    args = p.parse_args(argv)
    if args.quick:
        args.lengths, args.repeats, args.eager_max_tokens, args.max_new_tokens = [256, 512], 1, 512, 4
    return args


def build_engines(args: argparse.Namespace) -> dict[str, Any]:
    from perk_ray.config import load_config
    from perk_ray.engine import PerkEngine

    longest = max(args.lengths)
    engines = {}
    for attn in ("sdpa", "eager"):  # max_context_tokens: + the space after doc_i:
        cfg = load_config("tiny", [f"model.tiny.max_position_embeddings={longest + 1024}",
                                   f"model.attn_implementation={attn}", f"inner.max_context_tokens={longest + 1}",
                                   *args.overrides])
        engines[attn] = PerkEngine.from_config(cfg)
    # the same random base weights under both attention implementations (seeded by model.tiny.seed)
    a, b = (dict(e.base.model.named_parameters()) for e in engines.values())
    assert all(bool((a[n] == b[n]).all()) for n in a), "sdpa and eager engines must share the base weights"
    init = engines["sdpa"].initial_memory()
    assert all(float(t.abs().max()) == 0.0 for n, t in init.params.items() if ".lora_B." in n), \
        "the initial memory must be the plain base (LoRA B = 0)"
    return engines


def document(tokens: int) -> str:
    from serving.loadtest import make_document

    text = make_document(f"bench-{tokens}", tokens + 64)[:tokens]
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_torch(args.threads)
    quiet_warnings()

    from perk_ray.profiling import PeakMemory

    info = machine_info(args.threads)
    engines = build_engines(args)
    cfg = engines["sdpa"].cfg
    roof = matmul_roof(args.threads, sizes=(256,) if args.quick else (512, 1024), budget_s=0.2 if args.quick else 1.0)
    base_model = engines["sdpa"].base.model.get_base_model()
    n_params = sum(p.numel() for n, p in base_model.named_parameters() if "lora_" not in n)
    mcfg = base_model.config
    kv_bytes_per_token = 2 * mcfg.num_hidden_layers * mcfg.num_key_value_heads * (
        mcfg.hidden_size // mcfg.num_attention_heads) * 4
    print(f"machine: {machine_line(info)}")
    print(f"model: tiny Qwen2, {n_params:,} base parameters, hidden {mcfg.hidden_size}, {mcfg.num_hidden_layers} "
          f"layers; PERK: K={cfg.inner.steps} inner steps, {cfg.inner.chunk_tokens}-token chunks, micro-batches of "
          f"{cfg.inner.micro_batch_chunks} chunks, LoRA rank {cfg.lora.rank}; {args.max_new_tokens} new tokens")

    # warm-up (first-call allocations, kernel selection)
    warm = document(128)
    for e in engines.values():
        e.answer(e.encode(warm), [QUESTION], 2)
        e.generate(e.initial_memory(), [warm + "\n" + QUESTION + "\nAnswer:"], 2)

    def perk(attn: str, text: str):
        def run():
            e = engines[attn]
            t0 = time.perf_counter()
            memory = e.encode(text)
            t1 = time.perf_counter()
            out = e.answer(memory, [QUESTION], args.max_new_tokens)
            return {"encode_s": t1 - t0, "answer_s": time.perf_counter() - t1, "memory_bytes": memory.nbytes,
                    "chunks": memory.num_chunks, "tokens": memory.num_tokens, "out": out}
        return run

    def prompt(attn: str, text: str):
        def run():
            e = engines[attn]
            out = e.generate(e.initial_memory(), [text + "\n" + QUESTION + "\nAnswer:"], args.max_new_tokens)
            return {"out": out}
        return run

    def cases_for(n: int) -> dict[str, Any]:
        text = document(n)
        cases = {"perk_sdpa": perk("sdpa", text), "prompt_sdpa": prompt("sdpa", text)}
        if n <= args.eager_max_tokens:
            cases.update({"perk_eager": perk("eager", text), "prompt_eager": prompt("eager", text)})
        return cases

    wall0 = time.perf_counter()
    all_cases = {n: cases_for(n) for n in args.lengths}
    # pass 1: peak memory, one run per side and length (the sampler thread would disturb the timings)
    peaks: dict[tuple[int, str], float] = {}
    for n, cases in all_cases.items():
        for name, fn in cases.items():
            with PeakMemory("cpu") as mem:
                fn()
            peaks[n, name] = mem.peak_mib
        print(f"  memory pass {n:>6} tokens: " + ", ".join(f"{k} {peaks[n, k]:.0f} MiB" for k in cases), flush=True)
    # pass 2: timings. Every round sweeps all lengths (ascending, then descending, ...) and within a length
    # alternates the sides, so the machine's changing load hits every length and side alike.
    samples: dict[tuple[int, str], list[tuple[float, float, Any]]] = {}
    for r in range(args.repeats):
        order = args.lengths if r % 2 == 0 else list(reversed(args.lengths))
        for n in order:
            names = list(all_cases[n]) if r % 2 == 0 else list(reversed(all_cases[n]))
            for name in names:
                samples.setdefault((n, name), []).append(timed(all_cases[n][name]))
        print(f"  timing round {r + 1}/{args.repeats} done ({time.perf_counter() - wall0:.0f} s)", flush=True)
    rows: list[dict[str, Any]] = []
    for n in args.lengths:
        for name in all_cases[n]:
            side, attn = name.split("_")
            runs = samples[n, name]
            walls, cpus = [x[0] for x in runs], [x[1] for x in runs]
            row = {"tokens": n, "side": side, "attn": attn, "seconds": median(walls), "cpu_seconds": median(cpus),
                   "seconds_all": [round(t, 4) for t in walls], "cpu_seconds_all": [round(t, 4) for t in cpus],
                   "spread": spread(walls), "peak_mib": peaks[n, name]}
            outs = [x[2] for x in runs]
            if side == "perk":
                row["encode_s"] = median([x["encode_s"] for x in outs])
                row["answer_s"] = median([x["answer_s"] for x in outs])
                row["memory_kib"] = outs[0]["memory_bytes"] / 1024
                row["chunks"] = outs[0]["chunks"]
            else:
                row["kv_cache_kib"] = (n + 32) * kv_bytes_per_token / 1024
            rows.append(row)
        by = {(r["side"], r["attn"]): r for r in rows if r["tokens"] == n}
        line = [f"{n:>6} tokens"]
        for attn in ("sdpa", "eager"):
            if ("perk", attn) in by:
                p, q = by["perk", attn], by["prompt", attn]
                line.append(f"{attn}: PERK {p['seconds']:.2f} s ({p['cpu_seconds']:.2f} CPU s) / {p['peak_mib']:.0f} "
                            f"MiB, prompt {q['seconds']:.2f} s ({q['cpu_seconds']:.2f} CPU s) / "
                            f"{q['peak_mib']:.0f} MiB")
        print(" | ".join(line), flush=True)

    # per-length ratios and growth exponents
    ratios = []
    for n in args.lengths:
        for attn in ("sdpa", "eager"):
            p = next((r for r in rows if r["tokens"] == n and r["side"] == "perk" and r["attn"] == attn), None)
            q = next((r for r in rows if r["tokens"] == n and r["side"] == "prompt" and r["attn"] == attn), None)
            if p and q:
                ratios.append({"tokens": n, "attn": attn, "perk_s": p["seconds"], "prompt_s": q["seconds"],
                               "time_ratio": p["seconds"] / q["seconds"], "perk_mib": p["peak_mib"],
                               "prompt_mib": q["peak_mib"],
                               "memory_ratio": p["peak_mib"] / q["peak_mib"] if q["peak_mib"] > 0 else float("nan"),
                               "encode_s": p["encode_s"], "answer_s": p["answer_s"],
                               "perk_cpu_s": p["cpu_seconds"], "prompt_cpu_s": q["cpu_seconds"],
                               "cpu_ratio": p["cpu_seconds"] / q["cpu_seconds"]})
    exponents = {}
    for side in ("perk", "prompt"):
        for attn in ("sdpa", "eager"):
            pts = sorted((r["tokens"], r["seconds"], r["peak_mib"], r["cpu_seconds"]) for r in rows
                         if r["side"] == side and r["attn"] == attn)
            if len(pts) < 2:
                continue
            upper = [p for p in pts if p[0] >= pts[len(pts) // 2][0]]
            exponents[f"{side}_{attn}"] = {
                "time_all": loglog_slope([p[0] for p in pts], [p[1] for p in pts]),
                "time_upper_half": loglog_slope([p[0] for p in upper], [p[1] for p in upper]),
                "cpu_time_all": loglog_slope([p[0] for p in pts], [p[3] for p in pts]),
                "cpu_time_upper_half": loglog_slope([p[0] for p in upper], [p[3] for p in upper]),
                "memory_all": loglog_slope([p[0] for p in pts], [max(p[2], 1e-3) for p in pts]),
                "lengths": [p[0] for p in pts],
            }
    wall = time.perf_counter() - wall0

    md = ["## Encoding scaling: PERK versus context-in-prompt\n",
          f"Machine: {machine_line(info)}. Load average at end: {load_average()}.",
          f"Model: tiny Qwen2 ({n_params:,} parameters, hidden {mcfg.hidden_size}, {mcfg.num_hidden_layers} layers), "
          f"PERK K={cfg.inner.steps}, {cfg.inner.chunk_tokens}-token chunks, micro-batch "
          f"{cfg.inner.micro_batch_chunks} chunks, {args.max_new_tokens} new tokens. Median of {args.repeats} "
          f"interleaved repeats. Plain matmul roof in this run: {roof['flops_per_s'] / 1e9:.1f} GFLOP/s "
          f"({args.threads} thread).\n",
          table(ratios, [("tokens", "tokens"), ("attn", "attention"), ("perk_s", "PERK s (encode+answer)"),
                         ("encode_s", "of which encode s"), ("prompt_s", "prompt s"),
                         ("time_ratio", "time PERK/prompt"), ("cpu_ratio", "CPU time PERK/prompt"),
                         ("perk_mib", "PERK peak MiB"),
                         ("prompt_mib", "prompt peak MiB"), ("memory_ratio", "memory PERK/prompt")]),
          "\nGrowth exponents (slope of log time / log peak memory on log length):\n",
          table([{"curve": k, **v} for k, v in exponents.items()],
                [("curve", "curve"), ("time_all", "wall time, all lengths"),
                 ("time_upper_half", "wall time, upper half"), ("cpu_time_all", "CPU time, all lengths"),
                 ("cpu_time_upper_half", "CPU time, upper half"), ("memory_all", "peak memory, all lengths")])]
    markdown = "\n".join(md)
    print()
    print(markdown)
    stem = results_path("encode_scaling", args.quick, args.out_dir)
    payload = {"benchmark": "encode_scaling", "args": vars(args), "machine": info, "roof": roof,
               "model": {"parameters": n_params, "hidden_size": mcfg.hidden_size,
                         "layers": mcfg.num_hidden_layers, "kv_bytes_per_token": kv_bytes_per_token},
               "perk": {"inner_steps": cfg.inner.steps, "chunk_tokens": cfg.inner.chunk_tokens,
                        "micro_batch_chunks": cfg.inner.micro_batch_chunks, "lora_rank": cfg.lora.rank},
               "rows": rows, "ratios": ratios, "exponents": exponents, "wall_seconds": wall}
    write_results(stem, payload, markdown)
    plot(rows, exponents, stem.with_suffix(".png"), info)
    print(f"\nwrote {stem}.json/.md/.png in {wall:.0f} s")
    return payload


def plot(rows: list[dict[str, Any]], exponents: dict[str, Any], path, info: dict[str, Any]) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    styles = {("perk", "sdpa"): ("C0", "o-"), ("prompt", "sdpa"): ("C1", "s-"),
              ("perk", "eager"): ("C0", "o--"), ("prompt", "eager"): ("C1", "s--")}
    for (side, attn), (color, style) in styles.items():
        pts = sorted((r["tokens"], r["cpu_seconds"], r["seconds"], r["peak_mib"]) for r in rows
                     if r["side"] == side and r["attn"] == attn)
        if not pts:
            continue
        slope = exponents.get(f"{side}_{attn}", {})
        label = f"{'PERK' if side == 'perk' else 'context in prompt'} ({attn})"
        xs = [p[0] for p in pts]
        axes[0].plot(xs, [p[1] for p in pts], style, color=color,
                     label=f"{label}, n^{slope.get('cpu_time_all', float('nan')):.2f}")
        axes[1].plot(xs, [p[2] for p in pts], style, color=color,
                     label=f"{label}, n^{slope.get('time_all', float('nan')):.2f}")
        axes[2].plot(xs, [max(p[3], 0.5) for p in pts], style, color=color,
                     label=f"{label}, n^{slope.get('memory_all', float('nan')):.2f}")
    for ax, title, unit in ((axes[0], "CPU time: encode + answer (the work)", "CPU seconds"),
                            (axes[1], "wall time (inflated by the shared machine's load)", "seconds"),
                            (axes[2], "peak memory above the loaded model", "MiB (sampled RSS)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("context tokens")
        ax.set_ylabel(unit)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path, f"tiny preset, {info['cores']}-core CPU (shared, loaded), {info['torch_threads']} torch "
                "thread; medians of interleaved repeats")


if __name__ == "__main__":
    main()
