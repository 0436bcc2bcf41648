"""Run your own search space over the PERK configuration.

    python tune_spaces/run_space.py --space my_space.yaml --preset tiny --max-steps 40
    python tune_spaces/run_space.py --space my_space.yaml --search random --num-samples 12 --scheduler asha \
        train.eval_every=10

A space file is YAML (or a Python file defining ``SPACE = perk_ray.tuning.Space(...)``):

    name: lr_and_rank
    description: Inner learning rate against LoRA rank.
    fixed: {inner.steps: 4}
    params:                     # the first parameter is the x axis of the plots
      lora.rank: [8, 32]
      inner.lr: {loguniform: [1.0e-4, 1.0e-2]}   # random/optuna only; grid needs lists

Searches: grid (every combination the config accepts), random, optuna (needs `pip install optuna`).
Re-running the same command resumes an interrupted run.
"""

from perk_ray.tuning import cli


def main() -> None:
    """Console-script entry point (``perk-tune``)."""
    cli(None, __doc__)


if __name__ == "__main__":
    main()
