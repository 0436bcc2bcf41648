"""The one GPU check (benchmarks/gpu_check.py): its CPU smoke version in CI, the full version where a GPU is present.

Both run the script in a subprocess where Ray, pyarrow and datasets cannot be imported, as on a GPU box that has only
torch, transformers and peft (plus pydantic), so a new import of any of them in the check's path fails here first.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("meta_step", "training_loop", "encoding")
RUNNER = """
import runpy, sys

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("ray", "pyarrow", "datasets"):
            raise ModuleNotFoundError(f"No module named {name!r} (absent on a bare GPU box)")

sys.meta_path.insert(0, Absent())
sys.path.insert(0, "benchmarks")
sys.argv = ["benchmarks/gpu_check.py", *sys.argv[1:]]
runpy.run_path("benchmarks/gpu_check.py", run_name="__main__")
"""


def run_check(args: list[str], out: Path, timeout: float) -> dict:
    proc = subprocess.run([sys.executable, "-c", RUNNER, *args, "--out-dir", str(out)], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    stem = out / ("cpu_smoke" if "--cpu-smoke" in args else "gpu_check")
    markdown = stem.with_suffix(".md").read_text()
    assert all(f"### {i}." in markdown for i in (1, 2, 3))
    report = json.loads(stem.with_suffix(".json").read_text())
    assert all(report[part]["status"] == "ok" for part in PARTS), {p: report[p]["status"] for p in PARTS}
    return report


def check_sections(report: dict, lengths: list[int]) -> None:
    step = report["meta_step"]
    assert (step["K"], step["T"]) == (4, 2) and step["step_seconds"] > 0 and step["peak_above_bytes"] > 0
    assert step["planner"]["total_bytes"] > step["planner"]["meta_step_bytes"] > 0
    grad = step["float32_gradient"]
    assert grad["status"] == "ok" and grad["cosine"]["all"] > 0.95 and grad["relative_error"] < 0.3

    loop = report["training_loop"]
    assert [s["step"] for s in loop["steps"]] == [1, 2, 3] and loop["resumed_from_step"] == 2
    assert [s["step"] for s in loop["resumed_steps"]] == [3]
    assert all(math.isfinite(s["outer_loss"]) and s["step_seconds"] > 0 for s in loop["steps"])
    assert loop["resume_exact"] and loop["resume_max_abs_diff"] == 0.0 and loop["checkpoint_bytes"] > 0

    enc = report["encoding"]
    done = {(r["tokens"], r["side"]) for r in enc["rows"] if r["status"] == "ok" and r["seconds"] > 0}
    assert {(n, "perk") for n in lengths} <= done
    assert all(r["status"] in ("ok", "OOM") for r in enc["rows"])  # prompt-based answering may run out of memory
    assert all(r["encode_s"] > 0 and r["chunks"] >= 1 for r in enc["rows"] if r["side"] == "perk")


@pytest.mark.timeout(180)
def test_cpu_smoke_writes_every_section_with_sane_numbers(tmp_path):
    report = run_check(["--cpu-smoke"], tmp_path, timeout=170)
    assert report["mode"] == "cpu-smoke" and report["scale"]["backend"] == "gloo"
    assert report["meta_step"]["tokens"] == 128 and report["wall_s"] < report["budget_s"]
    check_sections(report, [128, 256])
    assert {(r["tokens"], r["side"], r["status"]) for r in report["encoding"]["rows"]} == {
        (n, side, "ok") for n in (128, 256) for side in ("perk", "prompt")}
    assert not report["encoding"]["skipped_lengths"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.timeout(600)
def test_gpu_check_passes_within_eight_minutes(tmp_path):
    report = run_check([], tmp_path, timeout=590)
    assert report["mode"] == "gpu" and report["scale"]["backend"] == "nccl" and report["wall_s"] < 480
    assert report["meta_step"]["tokens"] == 1024 and report["meta_step"]["lora_rank"] == 256
    check_sections(report, [1024, 2048, 4096, 8192])  # longer ones may be skipped for time (recorded)
