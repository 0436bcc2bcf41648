"""Encoding and answering time per OpenMP wait policy, on an idle machine and beside 2 busy-loop neighbours.

    python benchmarks/omp_wait_policy.py --checkpoint runs/smollm2-135m/best     # about 6 minutes (SmolLM2)

Each case runs in a fresh process (OpenMP reads its settings when torch loads) with 2 torch threads: load the
checkpoint, encode 4 generated BabiLong qa1 contexts of ``--tokens`` tokens and answer with 24 greedy tokens; the
median of the 4 is reported. The busy neighbours are two shell busy-loops at normal priority, started before and
killed after their block of cases.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench_utils import load_average, machine_info, machine_line, median, results_path, table, write_results

CASES = {"default": {}, "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
         "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"}}
LOADS = ("idle", "2 busy neighbours")


def child(checkpoint: str, tokens: int) -> None:
    import torch

    from perk_ray.data import generate
    from perk_ray.engine import PerkEngine

    torch.set_num_threads(2)
    engine = PerkEngine.from_checkpoint(checkpoint)
    records = generate("babilong-qa1", count=5, target_tokens=tokens, seed=1, tokenizer=engine.base.tokenizer)
    engine.answer(engine.encode(records[0].context), [records[0].question], 4)  # warm-up
    encode, answer = [], []
    for record in records[1:]:
        start = time.perf_counter()
        memory = engine.encode(record.context)
        middle = time.perf_counter()
        engine.answer(memory, [record.question], 24)
        encode.append(middle - start)
        answer.append(time.perf_counter() - middle)
    print(json.dumps({"encode_s": median(encode), "answer_s": median(answer)}))


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="runs/smollm2-135m/best")
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", default=None)
    args = p.parse_args(argv)
    if args.child:
        child(args.checkpoint, args.tokens)
        return {}
    info = machine_info(2)
    rows = []
    for load in LOADS:
        hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)] if load != "idle" else []
        try:
            for name, env in CASES.items():
                full_env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
                full_env.update(env)
                out = subprocess.run([sys.executable, __file__, "--child", "--checkpoint", args.checkpoint,
                                      "--tokens", str(args.tokens)], env=full_env, capture_output=True, text=True)
                line = [x for x in out.stdout.splitlines() if x.startswith("{")]
                if not line:
                    raise RuntimeError(f"{name}: child failed: {out.stderr[-2000:]}")
                rows.append({"load": load, "case": name, **json.loads(line[-1])})
                print(rows[-1], flush=True)
        finally:
            for hog in hogs:
                hog.kill()
    for row in rows:
        default = next(r for r in rows if r["load"] == row["load"] and r["case"] == "default")
        row["encode_vs_default"] = row["encode_s"] / default["encode_s"]
        row["answer_vs_default"] = row["answer_s"] / default["answer_s"]
    markdown = "\n".join([
        "## OpenMP wait policy: encode and answer time (2 torch threads)\n",
        f"Machine: {machine_line(info)}; load average at end {load_average()}. Checkpoint `{args.checkpoint}`, "
        f"{args.tokens}-token qa1 contexts, 24 answer tokens, medians of 4.\n",
        table(rows, [("load", "machine"), ("case", "setting"), ("encode_s", "encode s"),
                     ("encode_vs_default", "**vs default**"), ("answer_s", "answer s"),
                     ("answer_vs_default", "**vs default**")])])
    print(markdown)
    write_results(results_path("omp_wait_policy", False, args.out_dir),
                  {"benchmark": "omp_wait_policy", "machine": info, "args": vars(args), "rows": rows}, markdown)
    return {"rows": rows}


if __name__ == "__main__":
    main()
