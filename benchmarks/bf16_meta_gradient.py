"""Does the bf16 meta-gradient point where the fp32 one does? Cosine per meta-parameter group, by inner optimiser.

    python benchmarks/bf16_meta_gradient.py                      # SmolLM2-135M, 256-token qa1, K=2, T=1
    python benchmarks/bf16_meta_gradient.py --quick              # the tiny preset (smoke test)
    python benchmarks/bf16_meta_gradient.py --variants "inner.eps=1e-8" "inner.optimizer=sgd inner.lr=0.3"
    python benchmarks/bf16_meta_gradient.py --checkpoint runs/smollm2-results/best --variants "" --records 4

Each variant (a space-separated list of overrides) builds the model in fp32 and in bf16 with the same LoRA
initialisation, weighting model and task, runs one meta-step's backward in each and compares the gradients of the
LoRA init (A and B), the log inner rates and the weighting model. Differentiating through Adam's
m / (sqrt(v) + eps) weighs each coordinate by about 1 / (|g| + eps): with a tiny eps the coordinates whose inner
gradient is near zero dominate, and bf16 rounding decides their sign. ``--checkpoint`` starts both from a
meta-checkpoint's parameters instead of the initialisation (a meta-trained weighting model scales the inner loss,
and with it the inner gradients against eps); ``--records N`` averages the cosines over N generated qa1 tasks.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench_utils import machine_info, machine_line, quiet_warnings, results_path, setup_torch, table, write_results

GROUPS = ("lora_A", "lora_B", "log_inner_lrs", "weighting")
DEFAULT_VARIANTS = ["inner.eps=1e-8", "inner.eps=1e-5", "inner.eps=1e-4", "inner.optimizer=sgd inner.lr=0.3"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny preset, two variants")
    p.add_argument("--variants", nargs="+", default=None)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--checkpoint", default=None, help="meta-checkpoint whose parameters both dtypes start from")
    p.add_argument("--records", type=int, default=1, help="qa1 tasks to average the cosines over")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", default=None)
    return p.parse_args(argv)


def meta_gradient(preset: str, overrides: list[str], tokens: int, seed: int = 5,
                  checkpoint: str | None = None) -> tuple[dict[str, Any], float]:
    """Gradients of every meta-parameter after one meta-step's backward on the qa1 task of ``seed``, and the outer
    loss; from ``checkpoint``'s meta-parameters when given."""
    import torch

    from perk_ray.checkpoint import load_meta_params
    from perk_ray.config import load_config
    from perk_ray.data.generation import generate
    from perk_ray.meta import MetaParams, prepare_task, task_loss
    from perk_ray.model import load_base_model

    cfg = load_config(preset, ["inner.steps=2", "inner.truncation=1", *overrides])
    base = load_base_model(cfg.model, cfg.lora)
    base.model.eval()
    torch.manual_seed(0)
    meta = MetaParams.from_base(base, cfg)
    if checkpoint:
        load_meta_params(checkpoint, base, meta)
    record = generate("babilong-qa1", count=1, target_tokens=tokens, seed=seed, tokenizer=base.tokenizer)[0]
    task = prepare_task(base.tokenizer, cfg, list(record.context), [record.question], [record.answer[0]],
                        [list(record.support)], generator=torch.Generator().manual_seed(0))
    loss = task_loss(base, meta, task, cfg).loss
    loss.backward()
    return {n: p.grad.detach().float().flatten() for n, p in meta.named_parameters() if p.grad is not None}, float(loss)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    setup_torch(args.threads)
    quiet_warnings()
    import torch

    preset = "tiny" if args.quick else "smollm2-135m"
    variants = args.variants or (DEFAULT_VARIANTS[::3] if args.quick else DEFAULT_VARIANTS)
    rows = []
    for variant in variants:
        overrides = variant.split()
        sums: dict[str, float] = {}
        for seed in range(5, 5 + args.records):
            grads = {d: meta_gradient(preset, [f"model.dtype={d}", *overrides], args.tokens, seed, args.checkpoint)
                     for d in ("float32", "bfloat16")}
            (g32, loss32), (g16, loss16) = grads["float32"], grads["bfloat16"]
            values = {"outer_loss_fp32": loss32, "outer_loss_bf16": loss16}
            for group in (*GROUPS, "all"):
                names = [n for n in g32 if group == "all" or group in n]
                a, b = torch.cat([g32[n] for n in names]), torch.cat([g16[n] for n in names])
                values[f"cos_{group}"] = float(torch.nn.functional.cosine_similarity(a, b, dim=0))
                values[f"norm_ratio_{group}"] = float(b.norm() / a.norm())
            sums = {k: sums.get(k, 0.0) + v / args.records for k, v in values.items()}
        row: dict[str, Any] = {"variant": variant or "(none)", **sums}
        rows.append(row)
        print(f"{variant}: cosine {row['cos_all']:.4f}", flush=True)
    info = machine_info(args.threads)
    text = "\n".join([
        f"# bf16 vs fp32 meta-gradient ({preset}, {args.tokens}-token qa1, K=2, T=1, mean over {args.records} "
        f"task(s), from {args.checkpoint or 'the initialisation'})", "", machine_line(info), "",
        table([{k: f"{v:.4f}" if k.startswith("cos_") else v for k, v in row.items()} for row in rows],
              [("variant", "inner settings"), *((f"cos_{g}", f"cos {g}") for g in (*GROUPS, "all")),
               ("norm_ratio_lora_B", "bf16/fp32 norm, lora_B"), ("outer_loss_fp32", "outer loss fp32"),
               ("outer_loss_bf16", "outer loss bf16")])])
    print(text)
    payload = {"benchmark": "bf16_meta_gradient", "machine": info, "preset": preset, "checkpoint": args.checkpoint,
               "records": args.records, "rows": rows}
    write_results(results_path("bf16_meta_gradient", args.quick, args.out_dir), payload, text)
    return payload


if __name__ == "__main__":
    main()
