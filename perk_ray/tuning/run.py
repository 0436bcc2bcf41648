"""``run_space``: one resumable Ray Tune run of a space, and the command line of the ablation scripts."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from perk_ray.cli import add_config_arguments, run_cli
from perk_ray.config import PerkConfig
from perk_ray.errors import ConfigError
from perk_ray.runtime import init_ray
from perk_ray.tuning.results import best_row, markdown_table, results_table, write_results
from perk_ray.tuning.space import (SEARCHES, Point, Space, as_overrides, base_config, check_space, describe, load_space,
                                   trial_config)
from perk_ray.tuning.trial import (METRIC, MODE, Log, data_key, max_concurrent_trials, prepare_data, pretrain_base,
                                   run_trial, trial_resources)

logger = logging.getLogger(__name__)

SCHEDULERS = ("fifo", "asha")
EXPERIMENT = "tune"


def _trial_dirname(trial: Any) -> str:
    return trial.trial_id


@dataclass
class TuneOutcome:
    """Where the results are, the trial table, the best row (None if no trial finished), and whether every trial
    ended (False after an interruption: run the same call again to resume)."""

    output: Path
    table: pd.DataFrame
    best: dict[str, Any] | None
    complete: bool


def run_space(space: Space, preset: str, overrides: Sequence[str], output: str | Path, *, search: str = "grid",
              scheduler: str = "fifo", num_samples: int = 8, pretrain_steps: int = 200,
              callbacks: Sequence[tune.Callback] = (), verbose: int = 1, log: Log = logger.info) -> TuneOutcome:
    """Run (or resume: same ``output``) an ablation; write the table, summary and plots into ``output``.

    ``callbacks`` (Tune callbacks) apply to a fresh run; a resumed run keeps those it started with.
    """
    if scheduler not in SCHEDULERS:
        raise ConfigError(f"scheduler {scheduler!r}: choose one of {', '.join(SCHEDULERS)}")
    if num_samples < 1 or pretrain_steps < 0:
        raise ConfigError(f"num_samples={num_samples} must be >= 1 and pretrain_steps={pretrain_steps} >= 0")
    base = base_config(space, preset, overrides)
    points, refused = check_space(space, base, search)
    for point, reason in refused:
        shown = " ".join(as_overrides(point))
        log(f"skipping {shown}: {reason}" if search == "grid" else f"note: a trial drawing {shown} fails: {reason}")
    configs = [trial_config(base, point) for point in points]
    output = Path(output).resolve()
    experiment = output / EXPERIMENT
    resume = tune.Tuner.can_restore(experiment)
    _check_request(output, resume, {
        "space": {key: describe(values) for key, values in space.params.items()}, "preset": preset,
        "config": base.to_dict(), "search": search, "scheduler": scheduler, "pretrain_steps": pretrain_steps,
        "num_samples": num_samples if search != "grid" else 1})
    if not ray.is_initialized():
        init_ray()
    concurrency = max_concurrent_trials(configs, ray.cluster_resources())
    splits = prepare_data(configs, output, log)
    key = data_key(configs[0])
    base = pretrain_base(space, base, splits[key]["train"], output / f"base-{key}-{pretrain_steps}",
                         pretrain_steps, log)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=base.to_dict(), splits=splits, output=str(output)),
        lambda config: tune.PlacementGroupFactory([trial_resources(trial_config(base, config["point"]))]))
    if resume:
        log(f"resuming the tuning run in {experiment}")
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
    else:
        tuner = _new_tuner(space, points, trainable, output, search, scheduler, num_samples, base, concurrency,
                           callbacks, verbose)
    grid = tuner.fit()
    # Statuses as saved before Tune's clean-up, which marks the trials an interruption stopped as terminated.
    statuses = {trial.trial_id: trial.status for trial in tune.ExperimentAnalysis(str(experiment)).trials}
    table = results_table(grid, space, statuses)
    best = best_row(table)
    complete = all(status in ("TERMINATED", "ERROR") for status in statuses.values())
    write_results(output, space, table, best, base, preset, overrides, search, scheduler, complete)
    return TuneOutcome(output, table, best, complete)


def _check_request(output: Path, resume: bool, request: dict[str, Any]) -> None:
    """A resumed run must be the same request (Tune would silently continue the old one); record a new one."""
    request = json.loads(json.dumps(request))
    path = output / "request.json"
    if resume and path.exists():
        previous = json.loads(path.read_text())
        changed = sorted(key for key in request if previous.get(key) != request[key])
        if changed:
            raise ConfigError(f"{output} holds a tuning run with another {', '.join(changed)}: re-run it with the "
                              "same arguments to resume, or choose another --output")
        return
    output.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(request, indent=1))


def _new_tuner(space: Space, points: list[Point], trainable: Any, output: Path, search: str, scheduler: str,
               num_samples: int, base: PerkConfig, concurrency: int, callbacks: Sequence[tune.Callback],
               verbose: int) -> tune.Tuner:
    if search == "grid":
        param_space, samples, searcher = {"point": tune.grid_search(points)}, 1, None
    else:
        param_space = {"point": {key: tune.choice(values) if isinstance(values, (list, tuple)) else values
                                 for key, values in space.params.items()}}
        samples, searcher = num_samples, None
        if search == "optuna":
            from ray.tune.search.optuna import OptunaSearch

            searcher = OptunaSearch(metric=METRIC, mode=MODE, seed=base.train.seed)
    asha = ASHAScheduler(time_attr="step", max_t=10**6, grace_period=base.train.eval_every) \
        if scheduler == "asha" else None
    return tune.Tuner(
        trainable, param_space=param_space,
        tune_config=tune.TuneConfig(metric=METRIC, mode=MODE, search_alg=searcher, scheduler=asha,
                                    num_samples=samples, max_concurrent_trials=concurrency, reuse_actors=True,
                                    trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(name=EXPERIMENT, storage_path=str(output), verbose=verbose,
                                  callbacks=list(callbacks),
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                                  failure_config=tune.FailureConfig(max_failures=base.train.max_failures)))


def main(space: Space | None = None, description: str | None = None) -> int:
    """Command line of the ablations (``space`` given) and of ``run_space.py`` (``--space FILE``)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    if space is None:
        parser.add_argument("--space", required=True, help="a YAML or Python space file")
    add_config_arguments(parser)
    parser.add_argument("--output", help="results directory (default: runs/tune/<space>); re-run to resume")
    parser.add_argument("--max-steps", type=int, help="meta-steps per trial (train.max_steps)")
    parser.add_argument("--search", choices=SEARCHES, default="grid")
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="fifo",
                        help="asha stops weak trials at dev evaluations (every train.eval_every steps)")
    parser.add_argument("--num-samples", type=int, default=8, help="trials of a random or optuna search")
    parser.add_argument("--pretrain-steps", type=int, default=200, help="tiny only: pre-training steps of the base")
    args = parser.parse_args()
    space = space or load_space(args.space)
    overrides = [*args.overrides, *([f"train.max_steps={args.max_steps}"] if args.max_steps is not None else [])]
    outcome = run_space(space, args.preset, overrides, args.output or f"runs/tune/{space.name}", search=args.search,
                        scheduler=args.scheduler, num_samples=args.num_samples, pretrain_steps=args.pretrain_steps,
                        log=print)
    print(markdown_table(outcome.table))
    print(f"summary: {outcome.output / 'summary.md'}")
    if not outcome.complete:
        print("interrupted: re-run the same command to resume")
        return 130
    return 0


def cli(space: Space | None = None, description: str | None = None) -> None:
    """``main`` with perk-ray's exit codes (a bad space or config: exit 2 with one line)."""
    run_cli(lambda: main(space, description))
