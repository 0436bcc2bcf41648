"""Ray Tune ablations over the shared PerkConfig.

A ``Space`` maps dotted config fields to values (a grid) or Tune domains. ``run_space`` refuses a bad space before
any trial starts, prepares the data (and, on ``tiny``, a briefly pre-trained base) once, and runs one trial per
point: each meta-trains through ``MetaTrainer`` (or Ray Train's ``fit`` when it asks for more than one worker) and
reports every meta-step (dev accuracy at evaluations, meta-step time, peak memory, tokens/s). Re-running with the
same output directory resumes; the directory ends with ``trials.csv``, ``summary.md``, ``best_config.yaml`` and
plots of accuracy and peak memory against the ablated variable.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import itertools
import json
import math
import runpy
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import ray
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.sample import Categorical, Float, Integer

from perk_ray.checkpoint import atomic_directory
from perk_ray.cli import add_config_arguments, run_cli
from perk_ray.config import PerkConfig, apply_overrides, build_config, read_preset
from perk_ray.errors import ConfigError

SEARCHES = ("grid", "random", "optuna")
SCHEDULERS = ("fifo", "asha")
METRIC, MODE = "dev_accuracy", "max"
MEASURES = ("step_seconds", "peak_mib", "tokens_per_s")  # per meta-step; the table holds their medians
EXPERIMENT = "tune"
DRIVER_MEMORY = 64 * 2**20  # what a distributed trial's driver reserves: Ray Train V2 reserves its workers itself
_DISTRIBUTIONS = {"uniform": (tune.uniform, float), "loguniform": (tune.loguniform, float),
                  "randint": (tune.randint, int)}

Point = dict[str, Any]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Space:
    """Dotted PerkConfig fields -> a list of values (grid or choice) or a Tune domain.

    ``fixed`` fields hold for every trial (command-line overrides win over them); the first parameter is the
    ablated variable of the plots.
    """

    name: str
    params: Mapping[str, Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    @property
    def variable(self) -> str:
        return next(iter(self.params))


def load_space(path: str | Path) -> Space:
    """A space from a Python file that defines ``SPACE`` or a YAML file (``name``, ``description``, ``fixed``,
    ``params``; a parameter is a list or ``{uniform|loguniform|randint: [low, high]}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"space file {str(path)!r}: no such file")
    if path.suffix == ".py":
        space = runpy.run_path(str(path)).get("SPACE")
        if not isinstance(space, Space):
            raise ConfigError(f"space file {path}: define SPACE = perk_ray.tuning.Space(...)")
        return space
    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"space file {path}: expected a .yaml, .yml or .py file")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise ConfigError(f"space file {path}: expected a mapping with `params` (dotted field -> values)")
    unknown = sorted(set(data) - {"name", "description", "fixed", "params"})
    if unknown:
        raise ConfigError(f"space file {path}: unknown key `{unknown[0]}` (keys: name, description, fixed, params)")
    params = {key: _yaml_values(key, value) for key, value in data["params"].items()}
    return Space(str(data.get("name", path.stem)), params, dict(data.get("fixed") or {}), str(data.get("description", "")))


def _yaml_values(key: str, value: Any) -> Any:
    if isinstance(value, list):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (kind, bounds), = value.items()
        if kind in _DISTRIBUTIONS and isinstance(bounds, list) and len(bounds) == 2:
            make, cast = _DISTRIBUTIONS[kind]
            return make(*map(cast, bounds))
    raise ConfigError(f"space parameter `{key}`: expected a list of values or "
                      f"{{uniform|loguniform|randint: [low, high]}}, got {value!r}")


def describe(values: Any) -> Any:
    """A space parameter in plain words (lists stay lists): summaries and the resume check use it."""
    if isinstance(values, (list, tuple)):
        return list(values)
    if isinstance(values, Categorical):
        return f"choice {list(values.categories)}"
    sampler = type(getattr(values, "sampler", None)).__name__.strip("_").lower()
    return f"{type(values).__name__.lower()} {sampler}({values.lower}, {values.upper})"


def _as_overrides(fields: Mapping[str, Any]) -> list[str]:
    """``{dotted: value}`` as override strings; JSON values read back exactly through ``apply_overrides``."""
    return [f"{key}={json.dumps(value, default=lambda v: v.item())}" for key, value in fields.items()]


def base_config(space: Space, preset: str, overrides: Sequence[str]) -> PerkConfig:
    """The preset, then the space's fixed fields, then the overrides (which may not set a parameter)."""
    clash = sorted({o.partition("=")[0].strip().lstrip("-").replace("-", "_") for o in overrides} & set(space.params))
    if clash:
        raise ConfigError(f"`{clash[0]}` is a parameter of space {space.name!r}: do not override it, edit the space")
    cfg = build_config(apply_overrides(read_preset(preset), [*_as_overrides(space.fixed), *overrides]))
    paths = {key: str(Path(path).resolve()) for key, path in
             (("model.pretrained_dir", cfg.model.pretrained_dir), ("model.name", cfg.model.name))
             if path and Path(path).exists()}  # trials run in their own working directories
    return trial_config(cfg, paths)


def trial_config(base: PerkConfig, point: Mapping[str, Any]) -> PerkConfig:
    """One trial's configuration: the base with the point's fields set (ConfigError names a bad field)."""
    return build_config(apply_overrides(base.to_dict(), _as_overrides(point)))


def _candidates(space: Space, key: str, values: Any, search: str) -> list[Any]:
    """The values a check tries for one parameter: a list's values, a domain's bounds."""
    if isinstance(values, (list, tuple)):
        if not values:
            raise ConfigError(f"space {space.name!r}: `{key}` has an empty list of values")
        return list(values)
    if search == "grid":
        raise ConfigError(f"space {space.name!r}: `{key}` is a distribution; --search grid needs a list of values "
                          "(use --search random or optuna)")
    if key.startswith("data."):
        raise ConfigError(f"space {space.name!r}: `{key}` needs a list of values (each data set is prepared "
                          "before the trials)")
    if isinstance(values, Categorical):
        return list(values.categories)
    if isinstance(values, Float):
        return [values.lower, values.upper]
    if isinstance(values, Integer):
        return [values.lower, values.upper - 1]
    raise ConfigError(f"space {space.name!r}: `{key}` must be a list of values or a tune.uniform, loguniform, "
                      f"randint or choice domain, got {values!r}")


def check_space(space: Space, base: PerkConfig, search: str) -> tuple[list[Point], list[tuple[Point, str]]]:
    """Refuse a bad space before any trial; return the grid's accepted points and the refused ones with reasons.

    Every value of every parameter (a domain: both bounds) must be accepted in at least one combination: an
    unknown field, an empty list or ``inner.truncation`` above ``inner.steps`` everywhere is refused.
    """
    if search not in SEARCHES:
        raise ConfigError(f"search {search!r}: choose one of {', '.join(SEARCHES)}")
    if search == "optuna" and importlib.util.find_spec("optuna") is None:
        raise ConfigError("--search optuna needs the `optuna` package, which is not installed (pip install optuna); "
                          "use --search grid or random")
    if not space.params:
        raise ConfigError(f"space {space.name!r} has no parameters")
    candidates = {key: _candidates(space, key, values, search) for key, values in space.params.items()}
    points: list[Point] = []
    refused: list[tuple[Point, str]] = []
    for combination in itertools.product(*candidates.values()):
        point = dict(zip(candidates, combination))
        try:
            trial_config(base, point)
            points.append(point)
        except ConfigError as err:
            refused.append((point, str(err)))
    for key, values in candidates.items():
        for value in values:
            if not any(point[key] == value for point in points):
                reason = next(err for point, err in refused if point[key] == value)
                raise ConfigError(f"space {space.name!r}: {key}={value!r} is refused in every combination: {reason}")
    return points, refused


def trial_resources(cfg: PerkConfig) -> dict[str, float]:
    """What Tune reserves for a trial: its worker's CPUs and GPUs. A distributed trial only runs the Ray Train
    driver (V2 reserves the workers' placement group itself), so it holds a token of memory and no CPU."""
    train = cfg.train
    if train.num_workers > 1:
        return {"memory": DRIVER_MEMORY}
    return {"CPU": train.cpus_per_worker, "GPU": (train.gpus_per_worker or 1.0) if train.use_gpu else 0.0}


def trial_demand(cfg: PerkConfig) -> dict[str, float]:
    """Everything a running trial occupies, its Ray Train workers included."""
    train = cfg.train
    gpus = (train.gpus_per_worker or 1.0) if train.use_gpu else 0.0
    return {"CPU": train.num_workers * train.cpus_per_worker, "GPU": train.num_workers * gpus}


def max_concurrent_trials(configs: Sequence[PerkConfig], cluster: Mapping[str, float]) -> int:
    """How many of the most demanding trials fit in the cluster at once (ConfigError when not even one does)."""
    limits = []
    for kind in ("CPU", "GPU"):
        need = max(trial_demand(cfg)[kind] for cfg in configs)
        if need > 0:
            have = cluster.get(kind, 0.0)
            if need > have:
                raise ConfigError(f"a trial needs {need:g} {kind} (train.num_workers x train."
                                  f"{kind.lower()}s_per_worker); the Ray cluster has {have:g}")
            limits.append(int(have // need))
    return min(limits)


def data_key(cfg: PerkConfig) -> str:
    return hashlib.sha1(json.dumps(cfg.data.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:10]


def prepare_data(configs: Sequence[PerkConfig], output: Path, log: Log) -> dict[str, dict[str, str]]:
    """Splits for each distinct ``data`` section, keyed by ``data_key`` (generated once, kept for resuming)."""
    from perk_ray.train.data_prep import prepare_splits

    splits: dict[str, dict[str, str]] = {}
    for cfg in configs:
        key = data_key(cfg)
        if key not in splits:
            paths = prepare_splits(cfg, output / "splits" / key, log=log)
            splits[key] = {name: str(path.resolve()) for name, path in paths.items()}
    return splits


def pretrain_base(space: Space, base: PerkConfig, train_path: str, output: Path, steps: int, log: Log) -> PerkConfig:
    """On ``tiny`` (random weights cannot learn to answer) pre-train the base once on the train split's text and
    point every trial at it. Other presets, a given ``model.pretrained_dir`` or a space over ``model.*`` keep theirs."""
    if base.model.name != "tiny" or base.model.pretrained_dir or steps == 0:
        return base
    if any(key.startswith("model.") for key in space.params):
        log("note: the space varies model.* fields, so the tiny base is not pre-trained (accuracy stays near chance)")
        return base
    from perk_ray.pretrain import pretrain_tiny_base, task_text

    target = output / "base"
    if not (target / "config.json").exists():
        log(f"pre-training the tiny base ({steps} steps) -> {target}")
        with atomic_directory(target) as tmp:
            pretrain_tiny_base(base.model, task_text(_records(train_path)), tmp, steps=steps, batch_size=8,
                               seq_len=96, log=log)
    return trial_config(base, {"model.pretrained_dir": str(target.resolve())})


def _records(path: str) -> list[dict[str, Any]]:
    from perk_ray.data import read_records

    return [asdict(record) for record in read_records(path)]


def run_trial(config: dict[str, Any], base: dict[str, Any], splits: dict[str, dict[str, str]], output: str) -> None:
    """One Tune trial: meta-train the point's configuration through the library; report every meta-step."""
    cfg = trial_config(build_config(base), config["point"])
    paths = splits[data_key(cfg)]
    if cfg.train.num_workers > 1:
        _distributed_trial(cfg, paths, Path(output) / "trials" / tune.get_context().get_trial_id())
    else:
        _local_trial(cfg, paths)


def _local_trial(cfg: PerkConfig, paths: dict[str, str]) -> None:
    """MetaTrainer in the trial's process; Tune checkpoints are meta-checkpoints, so a resumed trial continues."""
    import torch

    from perk_ray.train.loop import MetaTrainer, run_meta_training

    torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    trainer = MetaTrainer(cfg, _records(paths["train"]), _records(paths["dev"]),
                          "cuda" if cfg.train.use_gpu else "cpu")
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            trainer.restore(Path(directory))

    def report(metrics: dict[str, float], checkpoint_dir: Path | None) -> None:
        saved = tune.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        tune.report({**metrics, "total_steps": trainer.total_steps}, checkpoint=saved)
        if checkpoint_dir is not None:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)

    scratch = Path(tempfile.mkdtemp(prefix="perk-tune-"))
    try:
        run_meta_training(trainer, report, scratch, log=lambda _: None)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _distributed_trial(cfg: PerkConfig, paths: dict[str, str], run_dir: Path) -> None:
    """A Ray Train run inside the trial (resumes from its own checkpoints); its metrics are reported once it ends."""
    from perk_ray.train.ray_trainer import fit

    fit(cfg, Path(paths["train"]), Path(paths["dev"]), run_dir)
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    by_step = {metrics["step"]: metrics for metrics in map(json.loads, lines)}  # a resumed run replays steps
    for step in sorted(by_step):
        tune.report({**by_step[step], "total_steps": max(by_step)})


def _trial_dirname(trial: Any) -> str:
    return trial.trial_id


@dataclass
class TuneOutcome:
    output: Path
    table: pd.DataFrame
    best: dict[str, Any] | None
    complete: bool


def run_space(space: Space, preset: str, overrides: Sequence[str], output: str | Path, *, search: str = "grid",
              scheduler: str = "fifo", num_samples: int = 8, pretrain_steps: int = 200,
              callbacks: Sequence[tune.Callback] = (), verbose: int = 1, log: Log = print) -> TuneOutcome:
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
        log(f"skipping {_as_overrides(point)}: {reason}")
    configs = [trial_config(base, point) for point in points]
    if not ray.is_initialized():
        ray.init()
    concurrency = max_concurrent_trials(configs, ray.cluster_resources())
    output = Path(output).resolve()
    _check_request(output, {"space": {key: describe(v) for key, v in space.params.items()}, "preset": preset,
                            "config": base.to_dict(), "search": search, "scheduler": scheduler,
                            "num_samples": num_samples if search != "grid" else 1})
    splits = prepare_data(configs, output, log)
    base = pretrain_base(space, base, splits[data_key(configs[0])]["train"], output, pretrain_steps, log)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, base=base.to_dict(), splits=splits, output=str(output)),
        lambda config: tune.PlacementGroupFactory([trial_resources(trial_config(base, config["point"]))]))
    experiment = output / EXPERIMENT
    if tune.Tuner.can_restore(experiment):
        log(f"resuming the tuning run in {experiment}")
        tuner = tune.Tuner.restore(str(experiment), trainable, resume_errored=True)
    else:
        tuner = _new_tuner(space, points, trainable, output, search, scheduler, num_samples, base, concurrency,
                           callbacks, verbose)
    grid = tuner.fit()
    table = results_table(grid, space)
    best = best_row(table)
    complete = grid.num_terminated + grid.num_errors == len(grid)
    write_results(output, space, table, best, base, preset, overrides, search, scheduler, complete)
    return TuneOutcome(output, table, best, complete)


def _check_request(output: Path, request: dict[str, Any]) -> None:
    """A resumed run must be the same request; a different one would silently continue the old one."""
    request = json.loads(json.dumps(request))
    path = output / "request.json"
    if path.exists():
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
                                  checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                                  failure_config=tune.FailureConfig(max_failures=base.train.max_failures)))


def results_table(grid: tune.ResultGrid, space: Space) -> pd.DataFrame:
    """One row per trial: its point, final dev accuracy and outer loss, median meta-step measurements, status."""
    rows = []
    for result in grid:
        frame = result.metrics_dataframe
        row: dict[str, Any] = {"trial": Path(result.path).name, **(result.config or {}).get("point", {})}
        steps = total = 0
        if frame is not None and "step" in frame:
            dev = frame[METRIC].dropna() if METRIC in frame else pd.Series(dtype=float)
            row[METRIC] = dev.iloc[-1] if len(dev) else math.nan
            row["outer_loss"] = frame["outer_loss"].iloc[-1]
            row.update({measure: frame[measure].median() for measure in MEASURES})
            steps, total = int(frame["step"].iloc[-1]), int(frame["total_steps"].iloc[-1])
        row["steps"] = steps
        if result.error is not None:
            row["status"] = "error: " + (str(result.error).strip().splitlines() or [""])[-1][:200]
        else:
            row["status"] = "ok" if steps and steps == total else f"stopped at {steps}/{total}"
        rows.append(row)
    columns = ["trial", *space.params, METRIC, "outer_loss", *MEASURES, "steps", "status"]
    return pd.DataFrame(rows).reindex(columns=columns).sort_values(list(space.params), key=_sort_key,
                                                                   ignore_index=True)


def _sort_key(column: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(column, errors="coerce")
    return numeric if numeric.notna().all() else column.astype(str)


def best_row(table: pd.DataFrame) -> dict[str, Any] | None:
    """The best finished trial: highest dev accuracy, then lowest outer loss."""
    done = table[(table["status"] == "ok") & table[METRIC].notna()]
    if done.empty:
        return None
    return done.sort_values([METRIC, "outer_loss"], ascending=[False, True]).iloc[0].to_dict()


def write_results(output: Path, space: Space, table: pd.DataFrame, best: dict[str, Any] | None, base: PerkConfig,
                  preset: str, overrides: Sequence[str], search: str, scheduler: str, complete: bool) -> None:
    """``trials.csv``, ``summary.md``, ``best_config.yaml`` and the two plots."""
    table.to_csv(output / "trials.csv", index=False)
    plot(table, space.variable, METRIC, "dev accuracy", output / "dev_accuracy.png")
    plot(table, space.variable, "peak_mib", "peak memory of a meta-step (MiB)", output / "peak_memory.png")
    finished = int((table["status"] == "ok").sum())
    lines = [f"# Ablation `{space.name}`", "", space.description, "",
             f"- preset `{preset}`; overrides: {_code(overrides) or 'none'}; fixed by the space: "
             f"{_code(_as_overrides(space.fixed)) or 'none'}",
             "- parameters: " + "; ".join(f"`{key}` {describe(values)}" for key, values in space.params.items()),
             f"- search `{search}`, scheduler `{scheduler}`; {len(table)} trials, {finished} finished"
             + ("" if complete else " (interrupted: re-run the same command to resume)"),
             "- medians over meta-steps: `step_seconds` (meta-step time), `peak_mib` (measured peak memory of a "
             "meta-step), `tokens_per_s` (context tokens per second); `dev_accuracy` and `outer_loss` at the "
             "last step", "", "## Best configuration", ""]
    if best is None:
        lines.append("No trial finished with a dev accuracy.")
    else:
        point = {key: best[key] for key in space.params}
        lines += [f"{_code(_as_overrides(point))}: dev accuracy {best[METRIC]:.3f}, outer loss "
                  f"{best['outer_loss']:.4f}, {best['step_seconds']:.3f} s/meta-step, peak "
                  f"{best['peak_mib']:.1f} MiB, {best['tokens_per_s']:.0f} tokens/s (full config: "
                  "`best_config.yaml`)."]
        (output / "best_config.yaml").write_text(trial_config(base, point).to_yaml())
    lines += ["", "## All trials", "", markdown_table(table), "",
              "![dev accuracy](dev_accuracy.png) ![peak memory](peak_memory.png)", ""]
    (output / "summary.md").write_text("\n".join(lines))


def _code(items: Sequence[str]) -> str:
    return " ".join(f"`{item}`" for item in items)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(table: pd.DataFrame) -> str:
    rows = [list(table.columns), ["---"] * len(table.columns)]
    rows += [[_cell(value) for value in record] for record in table.itertuples(index=False)]
    return "\n".join("| " + " | ".join(map(str, row)) + " |" for row in rows)


def plot(table: pd.DataFrame, variable: str, column: str, label: str, path: Path) -> None:
    """``column`` against the ablated variable: every trial as a dot, the mean per value as a line (Agg PNG)."""
    from matplotlib.figure import Figure

    rows = table[table[column].notna()]
    numeric = pd.to_numeric(rows[variable], errors="coerce")
    x = numeric if len(rows) and numeric.notna().all() else rows[variable].astype(str)
    order = sorted(x.unique(), key=lambda v: (isinstance(v, str), v))
    positions = order if x is numeric else list(range(len(order)))
    means = rows[column].groupby(x.values).mean()
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.plot(x.map(dict(zip(order, positions))), rows[column], "o", alpha=0.5)
    ax.plot(positions, [means[v] for v in order], "-", color="C0")
    if x is not numeric:
        ax.set_xticks(positions, [str(v) for v in order])
    elif len(order) > 2 and min(order) > 0 and max(order) / min(order) >= 16:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(variable)
    ax.set_ylabel(label)
    ax.set_title(f"{label} vs {variable}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


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
                        scheduler=args.scheduler, num_samples=args.num_samples, pretrain_steps=args.pretrain_steps)
    print(markdown_table(outcome.table))
    print(f"summary: {outcome.output / 'summary.md'}")
    if not outcome.complete:
        print("interrupted: re-run the same command to resume")
        return 130
    return 0


def cli(space: Space | None = None, description: str | None = None) -> None:
    run_cli(lambda: main(space, description))
