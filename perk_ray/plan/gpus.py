"""GPU kinds, and which of them (how many, at what time and cost) fit a meta-training configuration."""

from __future__ import annotations

from dataclasses import dataclass

from perk_ray.config import PerkConfig
from perk_ray.errors import ConfigError
from perk_ray.plan.arch import Architecture
from perk_ray.plan.compute import splits_batch, step_compute
from perk_ray.plan.memory import MemoryEstimate, estimate_memory

GIB = 2**30
RUNTIME_GIB = 1.5  # CUDA context, cuBLAS and NCCL workspaces: device memory outside PyTorch's allocator
MFU = 0.3  # assumed model-FLOPs utilisation of the meta-step (eager attention, double backward, small matmuls)
DEFAULT_HEADROOM = 0.2  # the planner's error on CPU (held-out cases within 20 %) and allocator fragmentation
STRATEGIES = ("ddp", "fsdp", "cp")


@dataclass(frozen=True)
class Gpu:
    """A GPU kind: memory as nvidia-smi reports it, dense BF16 tensor TFLOPS (spec sheet), and an assumed on-demand
    price per GPU-hour including the host's share (list prices, early 2026; edit them for your contract)."""

    name: str
    memory_gib: float
    bf16_tflops: float
    usd_per_hour: float
    aws: str  # an instance type with 8 of them
    gcp: str
    gke: str  # the node label cloud.google.com/gke-accelerator


GPUS: dict[str, Gpu] = {g.name: g for g in (
    Gpu("A10G-24GB", 22.5, 70.0, 1.42, "g5.48xlarge", "-", "-"),
    Gpu("L4-24GB", 22.5, 121.0, 1.00, "g6.48xlarge", "g2-standard-96", "nvidia-l4"),
    Gpu("A100-40GB", 40.0, 312.0, 3.67, "p4d.24xlarge", "a2-highgpu-8g", "nvidia-tesla-a100"),
    Gpu("A100-80GB", 80.0, 312.0, 5.12, "p4de.24xlarge", "a2-ultragpu-8g", "nvidia-a100-80gb"),
    Gpu("H100-80GB", 79.6, 989.0, 6.88, "p5.48xlarge", "a3-highgpu-8g", "nvidia-h100-80gb"),
    Gpu("H200-141GB", 140.4, 989.0, 7.91, "p5en.48xlarge", "a3-ultragpu-8g", "nvidia-h200-141gb"),
)}


def get_gpu(name: str) -> Gpu:
    if name not in GPUS:
        raise ConfigError(f"gpu={name!r}: unknown GPU kind; choose one of {', '.join(GPUS)}")
    return GPUS[name]


def check_headroom(headroom: float) -> float:
    if not 0 <= headroom < 1:
        raise ConfigError(f"headroom={headroom}: must be a fraction of GPU memory in [0, 1)")
    return headroom


@dataclass(frozen=True)
class Option:
    """One GPU kind at one world size: per-device memory, whether it fits, and the time and cost of the run."""

    gpu: Gpu
    strategy: str
    world_size: int
    memory: MemoryEstimate
    usable_bytes: float
    step_seconds: float
    meta_steps: int

    @property
    def fits(self) -> bool:
        return self.memory.total <= self.usable_bytes

    @property
    def run_hours(self) -> float:
        return self.step_seconds * self.meta_steps / 3600

    @property
    def run_usd(self) -> float:
        return self.run_hours * self.world_size * self.gpu.usd_per_hour

    @property
    def usd_per_1k_steps(self) -> float:
        return self.step_seconds * 1000 / 3600 * self.world_size * self.gpu.usd_per_hour


def with_train(cfg: PerkConfig, **fields) -> PerkConfig:
    """``cfg`` with other ``train`` fields (strategy, num_workers)."""
    return cfg.model_copy(update={"train": cfg.train.model_copy(update=fields)})


def evaluate(cfg: PerkConfig, arch: Architecture, gpu: Gpu, headroom: float = DEFAULT_HEADROOM) -> Option:
    """``cfg`` (its strategy and ``train.num_workers``) on ``gpu``."""
    compute = step_compute(cfg, arch)
    usable = gpu.memory_gib * GIB * (1 - check_headroom(headroom)) - RUNTIME_GIB * GIB
    return Option(gpu, cfg.train.strategy, cfg.train.num_workers, estimate_memory(cfg, arch), usable,
                  compute.flops / (gpu.bf16_tflops * 1e12 * MFU), compute.meta_steps)


def fitting_options(cfg: PerkConfig, arch: Architecture, gpu: Gpu, headroom: float = DEFAULT_HEADROOM,
                    max_world_size: int = 64) -> list[Option]:
    """Options that fit on ``gpu``: every world size up to the configured one, or else the smallest that fits
    (memory shrinks with the world size under fsdp and cp); only world sizes that can share the global batch."""
    sizes = [w for w in range(1, cfg.train.num_workers + 1) if splits_batch(cfg, w)]
    fitting = [o for o in (evaluate(with_train(cfg, num_workers=w), arch, gpu, headroom) for w in sizes) if o.fits]
    for world_size in range(cfg.train.num_workers + 1, max_world_size + 1):
        if fitting or cfg.train.strategy == "ddp":
            break
        if not splits_batch(cfg, world_size):
            continue
        option = evaluate(with_train(cfg, num_workers=world_size), arch, gpu, headroom)
        fitting = [option] if option.fits else []
    return fitting


def recommend(cfg: PerkConfig, arch: Architecture, headroom: float = DEFAULT_HEADROOM,
              kinds: list[Gpu] | None = None) -> Option | None:
    """The cheapest option for the run (then the fastest, then the fewest GPUs) with the configured strategy, else
    with another (context parallelism divides the activations)."""
    kinds = list(GPUS.values()) if kinds is None else kinds
    for strategy in (cfg.train.strategy, *(s for s in STRATEGIES if s != cfg.train.strategy)):
        candidate = with_train(cfg, strategy=strategy)
        options = [o for g in kinds for o in fitting_options(candidate, arch, g, headroom)]
        if options:
            return min(options, key=lambda o: (round(o.run_usd, 2), o.run_hours, o.world_size))
    return None
