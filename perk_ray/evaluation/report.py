"""The run's outputs: ``results.json`` (every row and aggregate) and ``results.md`` (tables)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perk_ray.evaluation.runner import EvalResults

METRICS = {"exact_match": "Exact match", "babilong": "BabiLong score"}
Entry = dict[str, Any]


def write_json(results: EvalResults, path: Path) -> Path:
    path.write_text(json.dumps(results.to_dict(), indent=1, allow_nan=False) + "\n")
    return path


def pct(score: dict[str, float] | None, with_ci: bool = True) -> str:
    if score is None:
        return "-"
    text = f"{100 * score['mean']:.1f}"
    return f"{text} [{100 * score['low']:.1f}, {100 * score['high']:.1f}]" if with_ci else text


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines + [""]


def _matrix(entries: list[Entry], methods: Sequence[str], column: str, metric: str,
            label=lambda value: str(value)) -> list[str]:
    """Methods x values of ``column``: the metric with its CI and n per cell."""
    columns = sorted({e[column] for e in entries})
    cells = {(e["method"], e[column]): e for e in entries}
    rows = []
    for method in methods:
        row = [method]
        for value in columns:
            entry = cells.get((method, value))
            row.append("-" if entry is None else f"{pct(entry[metric])} (n={entry['n']})")
        rows.append(row)
    return _table(["method", *(label(v) for v in columns)], rows)


def _metric_matrices(entries: list[Entry], methods: Sequence[str], column: str, label=str) -> list[str]:
    lines = []
    for metric, name in METRICS.items():
        if any(e[metric] is not None for e in entries):
            lines += [f"{name}, % [95% CI]:", "", *_matrix(entries, methods, column, metric, label)]
    return lines


def render_markdown(results: EvalResults, plots: Sequence[Path] = ()) -> str:
    """The tables of ``results.md``."""
    meta, summary = results.meta, results.summary
    methods = meta["methods"]
    train = summary["train_lengths"]
    lines = ["# PERK evaluation", "",
             f"- checkpoint: `{meta.get('checkpoint', '-')}`; data: `{meta.get('data', '-')}`; "
             f"{meta['num_examples']} examples; base model `{meta['base_model']}` on {meta['device']}",
             f"- methods: {', '.join(methods)}; greedy, {meta['max_new_tokens']} new tokens; prompt-based methods: "
             f"window {meta['window']} tokens, over-long contexts {meta['overflow']}"
             + (" (cut from the left)" if meta["overflow"] == "truncate" else " (marked impossible, scored wrong)"),
             f"- meta-trained on lengths {train}; 95% CIs: Wilson score intervals for accuracies (0/1 scores), "
             f"percentile bootstrap ({meta['resamples']} resamples, seed {meta['seed']}) for other means", "",
             "## Overall", ""]
    lines += _table(["method", "n", "exact match %", "BabiLong %", "truncated", "impossible"],
                    [[e["method"], e["n"], pct(e["exact_match"]), pct(e["babilong"]), e["truncated"],
                      e["impossible"]] for e in summary["overall"]])
    regimes = {e["length"]: e["regime"] for e in summary["by_length"]}
    lines += ["## Length extrapolation", "", f"Lengths in tokens; meta-training lengths: {train}.", ""]
    lines += _metric_matrices(summary["by_length"], methods, "length", lambda v: f"{v} ({regimes[v]})")
    lines += ["By regime (train: the meta-training lengths; longer: beyond them):", ""]
    lines += _metric_matrices(summary["length_extrapolation"], methods, "regime")
    lines += ["## Position robustness (supporting-fact depth)", ""]
    lines += (_metric_matrices(summary["by_depth"], methods, "depth_bin") if summary["by_depth"]
              else ["No fact depths in this data.", ""])
    lines += ["## Reasoning complexity (by task)", ""]
    lines += _metric_matrices(summary["by_task"], methods, "task")
    prompt_based = [e for e in summary["by_length"] if e["method"] in ("icl", "icl-ft")]
    if prompt_based:
        lines += ["## Contexts over the window (prompt-based methods)", ""]
        lines += _table(["method", "length", "n", "truncated", "impossible"],
                        [[e["method"], e["length"], e["n"], e["truncated"], e["impossible"]] for e in prompt_based])
    lines += ["## Latency and peak memory per example", "",
              "Means per example; peak memory is measured above the level before the step "
              "(CUDA allocator peak on GPU, sampled resident memory on CPU). `encode` is PERK/ttl's inner loop.", ""]
    lines += _table(["method", "length", "n", "context tokens", "encode s", "answer s", "total s",
                     "encode peak MiB", "answer peak MiB"],
                    [[e["method"], e["length"], e["n"], _num(e["context_tokens"], 0), _num(e["encode_s"]),
                      _num(e["answer_s"]), _num(e["total_s"]), _num(e["encode_peak_mib"], 1),
                      _num(e["answer_peak_mib"], 1)] for e in summary["cost"]])
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(lines)


def write_markdown(results: EvalResults, path: Path, plots: Sequence[Path] = ()) -> Path:
    path.write_text(render_markdown(results, plots))
    return path


def write_outputs(results: EvalResults, output: str | Path) -> list[Path]:
    """``results.json``, the PNG plots and ``results.md`` under ``output`` (created)."""
    from perk_ray.evaluation.plots import write_plots

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    results_json = write_json(results, output / "results.json")  # first: a failing plot must not lose the rows
    plots = write_plots(results.summary, results.meta["methods"], output)
    return [results_json, *plots, write_markdown(results, output / "results.md", plots)]
