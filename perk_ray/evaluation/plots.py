"""PNG plots of a run (matplotlib, Agg backend): accuracy vs length with CIs, depth x length heatmaps, accuracy by
task, and latency / peak memory vs length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)
import numpy as np  # noqa: E402

Entry = dict[str, Any]
LABELS = {"exact_match": "exact match (%)", "babilong": "BabiLong accuracy (%)"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_by_length(entries: list[Entry], methods: Sequence[str], train_lengths: Sequence[int], path: Path,
                       metric: str = "exact_match") -> Path:
    """``metric`` vs context length per method with 95% CI bars; meta-training lengths marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for method in methods:
        points = sorted((e["length"], e[metric]) for e in entries if e["method"] == method and e[metric])
        if not points:
            continue
        x = [p[0] for p in points]
        mean = np.array([p[1]["mean"] for p in points]) * 100
        err = np.array([[p[1]["mean"] - p[1]["low"], p[1]["high"] - p[1]["mean"]] for p in points]).T * 100
        ax.errorbar(x, mean, yerr=err, marker="o", capsize=3, label=method)
    for length in train_lengths:
        ax.axvline(length, color="grey", linestyle=":", linewidth=1)
    if len({e["length"] for e in entries}) > 1 and min(e["length"] for e in entries) > 0:
        ax.set_xscale("log", base=2)
    ax.set(xlabel="context length (tokens); dotted: meta-training lengths", ylabel=LABELS[metric],
           ylim=(-2, 102), title="Accuracy vs context length (95% CI)")
    ax.legend()
    return _save(fig, path)


def depth_length_heatmap(entries: list[Entry], methods: Sequence[str], path: Path, metric: str = "exact_match") -> Path:
    """One heatmap per method: ``metric`` by fact-depth bin (rows) and length (columns)."""
    lengths = sorted({e["length"] for e in entries})
    bins = sorted({e["depth_bin"] for e in entries})
    shown = [m for m in methods if any(e["method"] == m for e in entries)] or list(methods)
    fig, axes = plt.subplots(1, len(shown), figsize=(2.0 + 2.6 * len(shown), 2.4 + 0.45 * max(len(bins), 1)),
                             squeeze=False, sharey=True, layout="constrained")
    cells = {(e["method"], e["depth_bin"], e["length"]): e[metric]["mean"] * 100 for e in entries if e[metric]}
    image = None
    for ax, method in zip(axes[0], shown):
        grid = np.array([[cells.get((method, b, n), np.nan) for n in lengths] for b in bins]).reshape(len(bins),
                                                                                                       len(lengths))
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", color="white" if value < 60 else "black",
                        fontsize=8)
        ax.set_xticks(range(len(lengths)), [str(n) for n in lengths])
        ax.set(title=method, xlabel="length (tokens)")
    axes[0][0].set_yticks(range(len(bins)), bins)
    axes[0][0].set_ylabel("fact depth")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label=LABELS[metric])
    fig.suptitle("Accuracy by fact depth and length (blank: no examples)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def accuracy_by_task(entries: list[Entry], methods: Sequence[str], path: Path, metric: str = "exact_match") -> Path:
    """Grouped bars: ``metric`` per task and method, with 95% CI bars."""
    tasks = sorted({e["task"] for e in entries})
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(tasks) * max(1, len(methods)) / 2), 4.0))
    width = 0.8 / max(1, len(methods))
    for k, method in enumerate(methods):
        found = {e["task"]: e[metric] for e in entries if e["method"] == method and e[metric]}
        x = [i + k * width for i, t in enumerate(tasks) if t in found]
        scores = [found[t] for t in tasks if t in found]
        mean = np.array([s["mean"] for s in scores]) * 100
        err = np.array([[s["mean"] - s["low"], s["high"] - s["mean"]] for s in scores]).reshape(-1, 2).T * 100
        ax.bar(x, mean, width, yerr=err, capsize=2, label=method)
    ax.set_xticks([i + width * (len(methods) - 1) / 2 for i in range(len(tasks))], tasks)
    ax.set(ylabel=LABELS[metric], ylim=(0, 102), title="Accuracy by task (95% CI)")
    ax.legend()
    return _save(fig, path)


def cost_by_length(entries: list[Entry], methods: Sequence[str], path: Path) -> Path:
    """Latency (encode + answer) and peak memory per example vs context length."""
    fig, (time_ax, mem_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for method in methods:
        rows = sorted((e for e in entries if e["method"] == method), key=lambda e: e["length"])
        if not rows:
            continue
        x = [e["length"] for e in rows]
        time_ax.plot(x, [e["total_s"] for e in rows], marker="o", label=method)
        peaks = [max(e["encode_peak_mib"] or 0.0, e["answer_peak_mib"] or 0.0) for e in rows]
        mem_ax.plot(x, peaks, marker="o", label=method)
    time_ax.set(xlabel="context length (tokens)", ylabel="seconds per example", title="Latency (encode + answer)")
    mem_ax.set(xlabel="context length (tokens)", ylabel="MiB", title="Peak memory per example")
    lengths = {e["length"] for e in entries}
    for ax in (time_ax, mem_ax):
        if len(lengths) > 1 and min(lengths) > 0:
            ax.set_xscale("log", base=2)
        ax.legend()
    return _save(fig, path)


def plot_metric(summary: dict[str, Any]) -> str:
    """BabiLong's accuracy where the data has its label sets (it accepts a sentence that names the one right label,
    as prompt-based answers are), else exact match."""
    return "babilong" if any(e.get("babilong") for e in summary["by_length"]) else "exact_match"


def write_plots(summary: dict[str, Any], methods: Sequence[str], output: Path) -> list[Path]:
    """Every plot the data allows (the heatmap needs fact depths), written under ``output``."""
    metric = plot_metric(summary)
    paths = [accuracy_by_length(summary["by_length"], methods, summary["train_lengths"],
                                output / "accuracy_by_length.png", metric)]
    if summary["by_depth_length"]:
        paths.append(depth_length_heatmap(summary["by_depth_length"], methods, output / "accuracy_depth_length.png",
                                          metric))
    paths.append(accuracy_by_task(summary["by_task"], methods, output / "accuracy_by_task.png", metric))
    paths.append(cost_by_length(summary["cost"], methods, output / "cost_by_length.png"))
    return paths
