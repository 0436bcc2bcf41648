"""Memory and time planner for PERK meta-training: per-device memory, FLOPs, and which GPUs to rent."""

from perk_ray.plan.arch import KNOWN, Architecture, lora_params, lora_targets, resolve_architecture
from perk_ray.plan.memory import MemoryEstimate, estimate_memory, kept_step_bytes

__all__ = ["KNOWN", "Architecture", "MemoryEstimate", "estimate_memory", "kept_step_bytes", "lora_params",
           "lora_targets", "resolve_architecture"]
