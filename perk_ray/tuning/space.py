"""Search spaces over the shared PerkConfig: loading, the trial configurations, and the checks that refuse a bad
space before any trial starts."""

from __future__ import annotations

import importlib.util
import itertools
import json
import runpy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ray import tune
from ray.tune.search.sample import Categorical, Float, Integer

from perk_ray.config import PerkConfig, apply_overrides, build_config, read_preset
from perk_ray.errors import ConfigError

SEARCHES = ("grid", "random", "optuna")
_DISTRIBUTIONS = {"uniform": (tune.uniform, float), "loguniform": (tune.loguniform, float),
                  "randint": (tune.randint, int)}

Point = dict[str, Any]


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
    return Space(str(data.get("name", path.stem)), params, dict(data.get("fixed") or {}),
                 str(data.get("description", "")))


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


def as_overrides(fields: Mapping[str, Any]) -> list[str]:
    """``{dotted: value}`` as override strings; JSON values read back exactly through ``apply_overrides``."""
    return [f"{key}={json.dumps(value, default=lambda v: v.item())}" for key, value in fields.items()]


def base_config(space: Space, preset: str, overrides: Sequence[str]) -> PerkConfig:
    """The preset, then the space's fixed fields, then the overrides (which may not set a parameter)."""
    clash = sorted({o.partition("=")[0].strip().lstrip("-").replace("-", "_") for o in overrides} & set(space.params))
    if clash:
        raise ConfigError(f"`{clash[0]}` is a parameter of space {space.name!r}: do not override it, edit the space")
    cfg = build_config(apply_overrides(read_preset(preset), [*as_overrides(space.fixed), *overrides]))
    paths = {key: str(Path(path).resolve()) for key, path in
             (("model.pretrained_dir", cfg.model.pretrained_dir), ("model.name", cfg.model.name))
             if path and Path(path).exists()}  # trials run in their own working directories
    return trial_config(cfg, paths)


def trial_config(base: PerkConfig, point: Mapping[str, Any]) -> PerkConfig:
    """One trial's configuration: the base with the point's fields set (ConfigError names a bad field)."""
    return build_config(apply_overrides(base.to_dict(), as_overrides(point)))


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
