"""The planner's memory estimate against measurements on CPU, on configurations held out of its calibration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cluster"))
from planner_validation import CASES, case_config, kept_step_bytes_measured, measure_cases  # noqa: E402

from perk_ray.plan import estimate_memory, resolve_architecture  # noqa: E402

BAND = (0.75, 1.33)  # planned / measured peak; held-out cases measured 0.80-1.16 (cluster/planner_validation.md)
HELD_OUT = ["T=2 of K=2", "4 layers", "rank 256, 256 tokens", "vocabulary 8192, T=0, micro-batch 2"]


def _case(name: str):
    (case,) = [c for c in CASES if c.name == name]
    assert not case.calibration
    return case


@pytest.mark.parametrize("name", ["chunk 64", "rank 256, 256 tokens"])
def test_kept_step_graph_matches_saved_tensor_counts(name):
    measured, planned = kept_step_bytes_measured(case_config(_case(name)))
    assert planned == pytest.approx(measured, rel=0.03)


def test_meta_step_peaks_are_within_the_band():
    cases = [_case(name) for name in HELD_OUT]
    ratios = {}
    for case, peak in zip(cases, measure_cases(cases)):
        cfg = case_config(case)
        ratios[case.name] = estimate_memory(cfg, resolve_architecture(cfg.model)).meta_step / peak
    assert all(BAND[0] <= r <= BAND[1] for r in ratios.values()), ratios
