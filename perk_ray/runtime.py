"""Process settings of perk-ray's jobs: torch's thread count, and the OpenMP settings Ray workers inherit."""

from __future__ import annotations

import os
from typing import Any

PROCESS_ENV_KEYS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def process_env() -> dict[str, str]:
    """The OpenMP settings of this process that its Ray workers inherit, where the user set them (e.g.
    ``OMP_WAIT_POLICY=PASSIVE`` on a machine shared with other jobs; see docs/performance.md)."""
    return {key: os.environ[key] for key in PROCESS_ENV_KEYS if key in os.environ}


def init_ray(**kwargs: Any) -> None:
    """``ray.init`` (joins ``RAY_ADDRESS`` or a submitted job's cluster, else starts a local Ray) whose workers
    inherit :func:`process_env`; the caller's ``runtime_env`` env vars win."""
    import ray

    runtime_env = dict(kwargs.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**process_env(), **runtime_env.get("env_vars", {})}
    ray.init(runtime_env=runtime_env, **kwargs)


def set_torch_threads(cpus: float) -> None:
    """One torch intra-op thread per reserved CPU (at least one)."""
    import torch

    torch.set_num_threads(max(1, int(cpus)))
