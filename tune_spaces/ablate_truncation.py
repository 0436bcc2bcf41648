"""Ablation: truncation depth T of the unrolled inner loop (K = 4 inner steps).

The last T inner steps keep their graph for the meta-gradient; the earlier K - T are first-order. T = 0 is
first-order MAML, T = K the full unroll, T = 2 the paper's default. Memory should grow with T.

    python tune_spaces/ablate_truncation.py --preset tiny --max-steps 40 --output runs/tune/truncation
    python tune_spaces/ablate_truncation.py --preset qwen2.5-0.5b --max-steps 200 train.use_gpu=true
"""

from perk_ray.tuning import Space, cli

SPACE = Space(
    name="truncation",
    description="Truncated unrolling: the last T of K = 4 inner steps keep their graph (T = 0: first-order).",
    params={"inner.truncation": [0, 1, 2, 4]},
    fixed={"inner.steps": 4},
)

if __name__ == "__main__":
    cli(SPACE, __doc__)
