"""Learning curves read metrics.jsonl as the loop writes it (a resumed step logged twice counts once)."""

from __future__ import annotations

import json

import pytest

from perk_ray.train.curves import plot_learning_curves, read_metrics


def test_learning_curves_from_metrics(tmp_path):
    rows = [{"step": s, "outer_loss": 3.0 / s, "inner_loss_first": 1.0, "inner_loss_last": 0.5,
             "inner_lrs": [1e-3 * s, 2e-3], **({"dev_accuracy": 0.1 * s} if s % 2 == 0 else {})} for s in range(1, 7)]
    rows.insert(3, {**rows[3], "outer_loss": 99.0})  # step 4 logged twice (resume): the later record wins
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    read = read_metrics(path)
    assert [r["step"] for r in read] == [1, 2, 3, 4, 5, 6] and read[3]["outer_loss"] == 3.0 / 4
    png = plot_learning_curves(path)
    assert png == tmp_path / "learning_curves.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _write_run(path, dev_every: int, accuracy: float):
    rows = [{"step": s, "outer_loss": 1.0, "inner_loss_first": float(s), "inner_loss_last": 0.5,
             **({"dev_accuracy": accuracy} if s % dev_every == 0 else {})} for s in range(1, 9)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_runs_compared_by_dev_accuracy_with_intervals(tmp_path):
    from perk_ray.train.curves import dev_by_step, plot_run_comparison

    runs = {"a": _write_run(tmp_path / "a.jsonl", 4, 0.5), "b": _write_run(tmp_path / "b.jsonl", 2, 0.25)}
    points = dev_by_step(runs, dev_count=24)
    assert [d["step"] for d in points["a"]] == [4, 8] and [d["step"] for d in points["b"]] == [2, 4, 6, 8]
    first = points["a"][0]
    assert first["low"] == pytest.approx(0.314, abs=1e-3) and first["high"] == pytest.approx(0.686, abs=1e-3)
    assert first["inner_loss_first"] == pytest.approx((1 + 2 + 3 + 4) / 4)  # steps since the last evaluation
    assert points["a"][1]["inner_loss_first"] == pytest.approx((5 + 6 + 7 + 8) / 4)
    png = plot_run_comparison(runs, 24, tmp_path / "out" / "runs.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_runs_job_writes_the_table_and_names_bad_runs(tmp_path, run_job):
    a = _write_run(tmp_path / "a.jsonl", 4, 0.5)
    for argv, code in (([f"K=2=a{a}"], 2), ([f"K=2={a}", f"K=2={a}"], 2), ([f"K=2={a}"], 0)):
        exit_code, _, err = run_job("compare_runs.py", "--dev-count", "24", "--output", tmp_path / "o", *argv)
        assert exit_code == code, err
    table = (tmp_path / "o" / "runs.md").read_text()
    assert "| K=2 | 4 | 50.0 [31.4, 68.6] | 2.5 |" in table and "| K=2 | 8 |" in table
