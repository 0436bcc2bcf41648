"""Learning curves of a meta-training run from its metrics.jsonl: losses, dev accuracy and the learned rates (PNG),
and several runs side by side."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after selecting the backend)

from perk_ray.evaluation.metrics import wilson_ci  # noqa: E402


def read_metrics(path: Path) -> list[dict]:
    """One dict per logged meta-step; a resumed run may log a step twice: the last record of a step wins."""
    by_step: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[int(record["step"])] = record
    return [by_step[s] for s in sorted(by_step)]


def _smooth(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_learning_curves(metrics_file: Path, path: Path | None = None) -> Path:
    """Outer loss, inner loss before/after encoding, dev accuracy and learned inner rates against the meta-step."""
    rows = read_metrics(metrics_file)
    if not rows:
        raise ValueError(f"{metrics_file}: no metrics recorded yet")
    path = path or metrics_file.with_name("learning_curves.png")
    steps = [r["step"] for r in rows]
    window = max(1, len(rows) // 25)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    ax = axes[0]
    ax.plot(steps, _smooth([r["outer_loss"] for r in rows], window), label="outer (answer) loss")
    ax.plot(steps, _smooth([r["inner_loss_first"] for r in rows], window), label="inner loss before encoding")
    ax.plot(steps, _smooth([r["inner_loss_last"] for r in rows], window), label="inner loss at the last step")
    ax.set_yscale("log")
    ax.set(xlabel="meta-step", ylabel="loss (weighted inner; nats)", title=f"Losses (moving mean of {window})")
    ax.legend(fontsize=8)
    dev = [(r["step"], r["dev_accuracy"]) for r in rows if r.get("dev_accuracy") is not None]
    ax = axes[1]
    if dev:
        ax.plot([d[0] for d in dev], [100 * d[1] for d in dev], marker="o")
    ax.set(xlabel="meta-step", ylabel="dev exact match (%)", ylim=(-2, 102), title="Dev accuracy")
    ax = axes[2]
    rates = [r["inner_lrs"] for r in rows if r.get("inner_lrs")]
    if rates:
        for k in range(len(rates[0])):
            ax.plot(steps[-len(rates):], [r[k] for r in rates], label=f"inner step {k + 1}")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    ax.set(xlabel="meta-step", ylabel="learned rate (geometric mean)", title="Learned inner rates")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dev_by_step(runs: dict[str, Path], dev_count: int) -> dict[str, list[dict]]:
    """Per run, each dev evaluation's exact match with its Wilson 95% interval over ``dev_count`` contexts, and the
    mean inner loss before encoding over the steps since the previous evaluation (how far the token weights grew)."""
    out: dict[str, list[dict]] = {}
    for label, metrics_file in runs.items():
        rows, points, since = read_metrics(metrics_file), [], []
        for row in rows:
            since.append(row["inner_loss_first"])
            if row.get("dev_accuracy") is not None:
                correct = round(row["dev_accuracy"] * dev_count)
                ci = wilson_ci([1.0] * correct + [0.0] * (dev_count - correct))
                points.append({"step": row["step"], "accuracy": row["dev_accuracy"], "low": ci.low, "high": ci.high,
                               "inner_loss_first": sum(since) / len(since)})
                since = []
        out[label] = points
    return out


def plot_run_comparison(runs: dict[str, Path], dev_count: int, path: Path,
                        points: dict[str, list[dict]] | None = None) -> Path:
    """Dev exact match (with 95% intervals) and the weighted inner loss before encoding of several runs, by step;
    ``points`` is ``dev_by_step(runs, dev_count)`` when the caller has it already."""
    points = points or dev_by_step(runs, dev_count)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for offset, (label, metrics_file) in enumerate(runs.items()):
        dev = points[label]
        shift = 3 * (offset - (len(runs) - 1) / 2)  # side by side at shared steps
        axes[0].errorbar([d["step"] + shift for d in dev], [100 * d["accuracy"] for d in dev],
                         yerr=[[100 * (d["accuracy"] - d["low"]) for d in dev],
                               [100 * (d["high"] - d["accuracy"]) for d in dev]], marker="o", capsize=2, label=label)
        rows = read_metrics(metrics_file)
        window = max(1, len(rows) // 25)
        axes[1].plot([r["step"] for r in rows], _smooth([r["inner_loss_first"] for r in rows], window), label=label)
    axes[0].set(xlabel="meta-step", ylabel="dev exact match (%)", ylim=(-2, 102),
                title=f"Dev accuracy ({dev_count} contexts, Wilson 95%)")
    axes[1].set_yscale("log")
    axes[1].set(xlabel="meta-step", ylabel="weighted inner loss before encoding", title="Token weights' scale")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
