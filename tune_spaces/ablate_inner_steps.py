"""Ablation: number of inner steps K, with the truncation fixed at T = 1.

Only the last inner step keeps its graph, so peak memory stays about flat and more steps cost time: this
separates the effect of K on accuracy from the memory cost of unrolling (see ablate_truncation.py).

    python tune_spaces/ablate_inner_steps.py --preset tiny --max-steps 40 --output runs/tune/inner_steps
"""

from perk_ray.tuning import Space, cli

SPACE = Space(
    name="inner_steps",
    description="Inner steps K at a fixed truncation T = 1 (only the last inner step keeps its graph).",
    params={"inner.steps": [1, 2, 4, 8]},
    fixed={"inner.truncation": 1},
)

if __name__ == "__main__":
    cli(SPACE, __doc__)
