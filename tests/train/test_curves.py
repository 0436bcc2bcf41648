"""Learning curves read metrics.jsonl as the loop writes it (a resumed step logged twice counts once)."""

from __future__ import annotations

import json

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
