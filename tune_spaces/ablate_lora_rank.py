"""Ablation: rank of the LoRA memory (the paper's default is 256).

The rank bounds how much of a context the adapter can hold, and sets the memory and time of the inner loop.

    python tune_spaces/ablate_lora_rank.py --preset tiny --max-steps 40 --output runs/tune/lora_rank
"""

from perk_ray.tuning import Space, cli

SPACE = Space(
    name="lora_rank",
    description="Rank of the LoRA memory (rsLoRA scaling keeps the update size comparable across ranks).",
    params={"lora.rank": [4, 16, 64, 256]},
)

if __name__ == "__main__":
    cli(SPACE, __doc__)
