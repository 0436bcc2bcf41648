"""PERK meta-training on Ray Train.

    python jobs/meta_train.py                                  # the main job: smollm2-135m (or tiny) on this machine
    python jobs/meta_train.py --preset tiny --max-steps 50 train.num_workers=2
    python jobs/meta_train.py --preset qwen2.5-7b --dry-run       # validate and print the plan; no cluster, no weights
    ray job submit --working-dir . -- python jobs/meta_train.py --preset qwen2.5-7b --output /mnt/runs/7b

``ray.init()`` joins the cluster when RAY_ADDRESS is set or the job was submitted, else starts a local Ray.
Re-running with the same ``--output`` resumes from the latest checkpoint. ``--branch-from CHECKPOINT`` starts a new
``--output`` from a meta-checkpoint's meta-parameters, optimiser state and step, under this run's settings: an ablation
of a setting (``inner.doc_ids``, say) from the same point of one run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from perk_ray.cli import add_config_arguments, config_from_arguments, main_preset, run_cli
from perk_ray.runtime import init_ray
from perk_ray.train.curves import plot_learning_curves
from perk_ray.train.data_prep import prepare_splits
from perk_ray.train.ray_trainer import check_branch_point, dry_run, fit

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, default_preset=None)
    parser.add_argument("--output", help="run directory (default: train.output_dir of the preset)")
    parser.add_argument("--max-steps", type=int, help="bound the run to N meta-steps")
    parser.add_argument("--workers", type=int, help="Ray Train workers (train.num_workers)")
    parser.add_argument("--strategy", help="ddp | fsdp | cp (train.strategy)")
    parser.add_argument("--branch-from", metavar="CHECKPOINT", type=Path,
                        help="start a new --output from this meta-checkpoint's meta-parameters, optimiser and step")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation after training")
    parser.add_argument("--dry-run", "--plan", action="store_true",
                        help="validate the config, worker group and planned memory as fit does, print the plan, exit")
    args = parser.parse_args()
    args.preset = args.preset or main_preset()
    extra = [f"train.{k}={v}" for k, v in (("max_steps", args.max_steps), ("num_workers", args.workers),
                                           ("strategy", args.strategy), ("output_dir", args.output)) if v is not None]
    cfg = config_from_arguments(args, extra)
    if args.dry_run:
        print(dry_run(cfg))
        return 0
    run_dir = Path(cfg.train.output_dir).resolve()
    branch_from = check_branch_point(args.branch_from, run_dir) if args.branch_from else None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(cfg.to_yaml())
    splits = prepare_splits(cfg, run_dir, log=print)
    init_ray(log_to_driver=True)
    outcome = fit(cfg, splits["train"], splits["dev"], run_dir, branch_from)
    print(f"best checkpoint (dev accuracy): {outcome.best_checkpoint}")
    print(f"final checkpoint: {outcome.final_checkpoint}")
    print(f"metrics: {run_dir / 'metrics.jsonl'}")
    print(f"learning curves: {plot_learning_curves(run_dir / 'metrics.jsonl')}")
    evaluate = Path(__file__).with_name("evaluate.py")
    if not args.no_eval and "test" in splits and evaluate.exists():
        out = run_dir / "eval"
        cmd = [sys.executable, str(evaluate), "--checkpoint", str(outcome.best_checkpoint), "--data",
               str(splits["test"]), "--methods", "perk,icl", "--output", str(out)]  # ttl, icl-ft: jobs/evaluate.py
        if cfg.model.name == "smollm2-135m":
            cmd += ["--icl-template", "chat"]  # the instruct model ends at once after a plain `Answer:` prompt
        print("evaluating:", " ".join(cmd))
        subprocess.run(cmd, check=True)
        print(f"results: {out / 'results.md'}")
    return 0


def cli() -> None:
    """Console-script entry point: ``main`` with perk-ray's exit codes."""
    run_cli(main)


if __name__ == "__main__":
    cli()
