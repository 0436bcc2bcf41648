"""Mixed precision on CPU: a bf16 frozen base (fp32 LoRA, meta-parameters and losses) against fp32, side by side.

    python benchmarks/bf16_cpu.py            # SmolLM2-135M at the demo's shapes (256-token qa1, K=2, T=1)
    python benchmarks/bf16_cpu.py --quick    # the tiny preset, seconds (smoke test)

For each dtype: the meta-step (``task_loss`` + backward, what meta-training runs) and encoding (``PerkEngine.encode``,
the first-order inner loop at inference), interleaved round by round (fp32, bf16, fp32, ...) so the machine's load
hits both alike; medians over rounds. FLOPs: ``FlopCounterMode`` over one meta-step and one encoding. The roofs are
plain fp32 and bf16 matmuls measured in the same run with the same threads; achieved FLOP/s is counted FLOPs over the
median wall time. Also the bf16 meta-gradient's cosine to the fp32 one (same initialisation and task).
"""

from __future__ import annotations

import argparse
from typing import Any

from bench_utils import (machine_info, machine_line, matmul_roof, median, pyplot, quiet_warnings, results_path,
                         save_figure, setup_torch, table, timed, write_results)

DTYPES = ("float32", "bfloat16")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny preset, 2 rounds: seconds (smoke test)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--tokens", type=int, default=256, help="context tokens of the qa1 record")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", default=None)
    return p.parse_args(argv)


def build(dtype: str, args: argparse.Namespace):
    """Engine, meta-parameters and one prepared qa1 task of the preset in ``dtype`` (same seeds for both dtypes)."""
    import torch

    from perk_ray.config import load_config
    from perk_ray.data.generation import generate
    from perk_ray.engine import PerkEngine
    from perk_ray.meta import MetaParams, prepare_task
    from perk_ray.model import load_base_model

    preset = "tiny" if args.quick else "smollm2-135m"
    cfg = load_config(preset, [f"model.dtype={dtype}", "inner.steps=2", "inner.truncation=1"])
    base = load_base_model(cfg.model, cfg.lora)
    base.model.eval()
    torch.manual_seed(0)
    meta = MetaParams.from_base(base, cfg)
    record = generate("babilong-qa1", count=1, target_tokens=args.tokens, seed=7, tokenizer=base.tokenizer)[0]
    task = prepare_task(base.tokenizer, cfg, list(record.context), [record.question], [record.answer[0]],
                        [list(record.support)], generator=torch.Generator().manual_seed(0))
    return cfg, PerkEngine(cfg, base, meta), meta, task, list(record.context)


def meta_step_fn(cfg, engine, meta, task):
    from perk_ray.meta import task_loss

    def run():
        meta.zero_grad(set_to_none=True)
        task_loss(engine.base, meta, task, cfg).loss.backward()

    return run


def count_flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.quick:
        args.rounds = 2
    setup_torch(args.threads)
    quiet_warnings()
    import torch

    info = machine_info(args.threads)
    roofs = {d: matmul_roof(args.threads, sizes=(512, 1024), dtype=d, budget_s=0.5 if args.quick else 1.0)
             for d in DTYPES}
    built = {d: build(d, args) for d in DTYPES}
    cases = {}
    for d, (cfg, engine, meta, task, context) in built.items():
        cases[(d, "meta-step")] = meta_step_fn(cfg, engine, meta, task)
        cases[(d, "encode")] = lambda engine=engine, context=context: engine.encode(context)
    flops = {key: count_flops(fn) for key, fn in cases.items()}
    grads = {}
    for d, (_, _, meta, _, _) in built.items():
        cases[(d, "meta-step")]()
        grads[d] = torch.cat([p.grad.detach().float().flatten() for p in meta.parameters() if p.grad is not None])
    cosine = float(torch.nn.functional.cosine_similarity(grads["float32"], grads["bfloat16"], dim=0))
    for fn in cases.values():  # warm-up
        fn()
    times: dict[tuple[str, str], list[float]] = {key: [] for key in cases}
    for _ in range(args.rounds):
        for key, fn in cases.items():
            times[key].append(timed(fn)[0])
    rows = []
    for (d, what), values in times.items():
        seconds = median(values)
        achieved = flops[(d, what)] / seconds
        rows.append({"dtype": d, "what": what, "seconds": seconds, "gflop": flops[(d, what)] / 1e9,
                     "gflops_per_s": achieved / 1e9, "roof_fraction": achieved / roofs[d]["flops_per_s"],
                     "speedup_vs_fp32": median(times[("float32", what)]) / seconds})
    roof_ratio = roofs["bfloat16"]["flops_per_s"] / roofs["float32"]["flops_per_s"]
    text = "\n".join([
        f"# bf16 vs fp32 on CPU ({'tiny preset' if args.quick else 'SmolLM2-135M'}, {args.tokens}-token qa1, K=2, "
        f"T=1)", "", machine_line(info), "",
        f"matmul roof: fp32 {roofs['float32']['flops_per_s'] / 1e9:.1f} GFLOP/s, bf16 "
        f"{roofs['bfloat16']['flops_per_s'] / 1e9:.1f} GFLOP/s ({roof_ratio:.2f}x), {args.threads} threads", "",
        table(rows, [("dtype", "dtype"), ("what", "work"), ("seconds", "median s"), ("speedup_vs_fp32", "x fp32"),
                     ("gflop", "GFLOP"), ("gflops_per_s", "GFLOP/s"), ("roof_fraction", "of its dtype's roof")]),
        "", f"bf16 meta-gradient vs fp32: cosine {cosine:.4f} (inner.eps={built['float32'][0].inner.eps:g})",
        f"medians over {args.rounds} interleaved rounds"])
    print(text)
    payload = {"benchmark": "bf16_cpu", "machine": info, "roofs": roofs, "rows": rows, "cosine": cosine,
               "rounds": args.rounds, "times": {f"{d} {w}": v for (d, w), v in times.items()}}
    stem = results_path("bf16_cpu", args.quick, args.out_dir)
    write_results(stem, payload, text)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    works = ["meta-step", "encode"]
    for i, d in enumerate(DTYPES):
        ax.bar([j + 0.38 * i for j in range(len(works))], [median(times[(d, w)]) for w in works], width=0.38, label=d)
    ax.set_xticks([j + 0.19 for j in range(len(works))], works)
    ax.set(ylabel="median seconds")
    ax.legend()
    save_figure(fig, stem.with_suffix(".png"), machine_line(info))
    return payload


if __name__ == "__main__":
    main()
