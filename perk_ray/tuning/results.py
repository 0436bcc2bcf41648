"""The results directory of a tuning run: ``trials.csv``, ``summary.md``, ``best_config.yaml`` and plots."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from perk_ray.config import PerkConfig
from perk_ray.tuning.space import Space, as_overrides, describe, trial_config
from perk_ray.tuning.trial import METRIC

MEASURES = ("step_seconds", "peak_mib", "tokens_per_s")  # per meta-step; the table holds their medians


def results_table(grid: tune.ResultGrid, space: Space, statuses: Mapping[str, str]) -> pd.DataFrame:
    """One row per trial: its point, final dev accuracy and outer loss, median meta-step measurements and status
    (``ok``, ``stopped at s/t`` by the scheduler, ``unfinished`` by an interruption, or the error)."""
    rows = []
    for result in grid:
        frame = result.metrics_dataframe
        trial = Path(result.path).name
        row: dict[str, Any] = {"trial": trial, **(result.config or {}).get("point", {})}
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
        elif statuses.get(trial) != "TERMINATED":
            row["status"] = "unfinished"
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
             f"{_code(as_overrides(space.fixed)) or 'none'}",
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
        lines += [f"{_code(as_overrides(point))}: dev accuracy {best[METRIC]:.3f}, outer loss "
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
    if x is numeric and len(order) > 2 and min(order) > 0 and max(order) / min(order) >= 16:
        ax.set_xscale("log", base=2)
    if len(order) <= 12:
        ax.set_xticks(positions, [f"{v:g}" if x is numeric else str(v) for v in order])
    ax.set_xlabel(variable)
    ax.set_ylabel(label)
    ax.set_title(f"{label} vs {variable}", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
