"""The jobs: meta-training, data generation, evaluation and the fine-tuned baseline (console scripts perk-*)."""
