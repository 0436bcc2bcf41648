"""Evaluation over Ray actors: each actor loads the engine once and takes examples from a shared queue; the
rows are the same as in-process (greedy decoding, per-example work), only the timings differ."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util import ActorPool
from tqdm.auto import tqdm

from perk_ray.config import PerkConfig
from perk_ray.data.schema import TaskRecord
from perk_ray.engine import PerkEngine
from perk_ray.errors import InputError
from perk_ray.evaluation.methods import check_inputs
from perk_ray.evaluation.runner import EvalOptions, EvalResults, Row, build_results, make_runners, run_record


class _Evaluator:
    """One actor: an engine and the method runners, built once."""

    def __init__(self, checkpoint: str, methods: Sequence[str], options: EvalOptions, overrides: Sequence[str],
                 device: str):
        self.engine = PerkEngine.from_checkpoint(checkpoint, device, overrides)
        self.options = options.resolved(self.engine)
        self.runners = make_runners(self.engine, methods, self.options)

    def describe(self) -> tuple[PerkConfig, str, EvalOptions]:
        return self.engine.cfg, str(self.engine.base.device), self.options

    def run(self, index: int, record: TaskRecord) -> list[Row]:
        return run_record(self.engine, self.runners, index, record)


def evaluate_parallel(checkpoint: str | Path, records: Sequence[TaskRecord], methods: Sequence[str],
                      options: EvalOptions | None = None, *, num_actors: int = 2, overrides: Sequence[str] = (),
                      device: str = "cpu", cpus_per_actor: float = 1.0, progress: bool = False,
                      meta: dict[str, Any] | None = None) -> EvalResults:
    """Evaluate on ``num_actors`` Ray actors (``ray.init`` must have run); each loads ``checkpoint`` once."""
    if not records:
        raise InputError("no records to evaluate")
    if num_actors < 1:
        raise InputError(f"--num-actors {num_actors}: give at least 1")
    options = options or EvalOptions()
    options.validate()
    check_inputs(checkpoint, methods, options.icl_ft_checkpoint)  # here: an actor would report a wrapped error
    actor = ray.remote(num_cpus=cpus_per_actor, num_gpus=1 if device.startswith("cuda") else 0)(_Evaluator)
    actors = [actor.remote(str(checkpoint), list(methods), options, list(overrides), device)
              for _ in range(min(num_actors, len(records)))]
    try:
        cfg, where, opts = ray.get(actors[0].describe.remote())
        rows: list[Row] = []
        results = ActorPool(actors).map_unordered(lambda a, item: a.run.remote(*item), list(enumerate(records)))
        for found in tqdm(results, total=len(records), desc="evaluating", unit="example", disable=not progress):
            rows.extend(found)
    finally:
        for a in actors:
            ray.kill(a)
    return build_results(cfg, where, rows, methods, opts, {"num_actors": len(actors), **(meta or {})})
