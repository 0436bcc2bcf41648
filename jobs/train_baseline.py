"""Fine-tune the icl-ft baseline (LoRA on context-in-prompt -> answer) with PERK's data and budget, on Ray Train.

    python jobs/train_baseline.py --preset tiny --data data/kv --output runs/icl-ft
    python jobs/train_baseline.py --like runs/tiny/best --data data/kv --output runs/icl-ft   # PERK run's config
    python jobs/train_baseline.py --preset qwen2.5-0.5b --data data/qa1 --output runs/icl-ft-0.5b \\
        --engine deepspeed --workers 8 train.use_gpu=true

--data is the directory of jobs/make_data.py (its train split is used) or a training file. The budget is the
preset's: outer.epochs x outer.batch_size records (train.max_steps bounds it), outer AdamW and schedule, the same
LoRA as PERK. --engine deepspeed runs DeepSpeed ZeRO-3 (pip install 'perk-ray[deepspeed]'); the default is
deepspeed when it is installed, else torch. Bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from perk_ray.checkpoint import read_checkpoint_info
from perk_ray.cli import add_config_arguments, config_from_arguments, run_cli
from perk_ray.config import apply_overrides, build_config
from perk_ray.errors import InputError
from perk_ray.runtime import init_ray
from perk_ray.evaluation.icl_ft import deepspeed_available


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line through run_cli, not usage + message
        raise InputError(message)


def main() -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser)
    parser.add_argument("--like", help="a PERK meta-checkpoint: take its config (model, LoRA, budget) as the preset")
    parser.add_argument("--data", required=True, help="make_data.py directory (train split) or a training file")
    parser.add_argument("--output", required=True, type=Path, help="directory of the icl-ft checkpoint")
    parser.add_argument("--engine", choices=("deepspeed", "torch"), help="default: deepspeed if installed, else torch")
    parser.add_argument("--workers", type=int, help="Ray Train workers (train.num_workers)")
    parser.add_argument("--max-steps", type=int, help="bound the fine-tune to N steps (train.max_steps)")
    parser.add_argument("--storage-path", help="Ray Train storage (shared on multi-node clusters; default: temporary)")
    args = parser.parse_args()
    extra = [f"train.{k}={v}" for k, v in (("num_workers", args.workers), ("max_steps", args.max_steps))
             if v is not None]
    if args.like:
        base = read_checkpoint_info(args.like).config.to_dict()
        cfg = build_config(apply_overrides(base, [*args.overrides, *extra]))
    else:
        cfg = config_from_arguments(args, extra)
    engine = args.engine
    if engine is None:
        engine = "deepspeed" if deepspeed_available() else "torch"
        if engine == "torch":
            print("note: DeepSpeed is not installed: using --engine torch (pip install 'perk-ray[deepspeed]')")
    from perk_ray.evaluation.icl_ft_ray import fit_icl_ft, train_split

    train_path = train_split(args.data)
    init_ray(log_to_driver=True)
    output = fit_icl_ft(cfg, train_path, args.output, engine=engine, storage_path=args.storage_path)
    print(f"icl-ft ({engine}, {cfg.train.num_workers} workers) trained on {train_path}: {output}")
    print(f"evaluate: python jobs/evaluate.py --checkpoint PERK_CKPT --data DATA --methods perk,icl,icl-ft "
          f"--icl-ft-checkpoint {output} --output EVAL_DIR")
    return 0


def cli() -> None:
    """Console-script entry point: ``main`` with perk-ray's exit codes."""
    run_cli(main)


if __name__ == "__main__":
    cli()
