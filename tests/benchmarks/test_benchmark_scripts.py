"""Smoke test: every benchmark script runs its ``--quick`` mode and writes its JSON, table and plot.

The scripts run in this process (``main(argv)``), so torch and transformers are imported once; the quick runs
take well under a minute on an idle 2-core machine. They write to a temporary directory, never to
benchmarks/results.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"


@pytest.fixture(autouse=True)
def bench_path():
    """The scripts import their helpers (bench_utils, prototypes) from benchmarks/ and `serving` from the root.

    benchmarks/ goes last on sys.path so that `serving` stays the repository's package (benchmarks/serving.py is
    loaded by path under another name).
    """
    threads = torch.get_num_threads()
    added = [p for p in (str(ROOT), str(BENCH)) if p not in sys.path]
    if str(ROOT) in added:
        sys.path.insert(0, str(ROOT))
    if str(BENCH) in added:
        sys.path.append(str(BENCH))
    try:
        yield
    finally:
        for p in added:
            sys.path.remove(p)
        torch.set_num_threads(threads)


def run_quick(name: str, out: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"bench_script_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--quick", "--out-dir", str(out)])
    stem = out / f"{name}_quick"
    for suffix in (".json", ".md", ".png"):
        path = stem.with_suffix(suffix)
        assert path.exists() and path.stat().st_size > 0, f"{name}: {path.name} missing"
    payload = json.loads(stem.with_suffix(".json").read_text())
    assert payload["benchmark"] == name and payload["machine"]["cores"] >= 1
    return payload


@pytest.mark.timeout(300)
def test_encode_scaling_quick(tmp_path):
    payload = run_quick("encode_scaling", tmp_path)
    assert {r["attn"] for r in payload["ratios"]} == {"sdpa", "eager"}
    assert all(r["time_ratio"] > 0 and r["cpu_ratio"] > 0 and r["perk_mib"] >= 0 for r in payload["ratios"])
    assert "perk_sdpa" in payload["exponents"] and "prompt_sdpa" in payload["exponents"]


@pytest.mark.timeout(300)
def test_meta_step_quick(tmp_path):
    payload = run_quick("meta_step", tmp_path)
    assert {(r["K"], r["T"]) for r in payload["rows"]} == {(1, 1), (2, 1)}
    assert all(r["gflop_per_step"] > 0 and 0 < r["roof_fraction"] < 1 for r in payload["rows"])
    assert payload["inner_loop"][0]["flops"] > 0


@pytest.mark.timeout(300)
def test_inner_loop_costs_quick(tmp_path):
    payload = run_quick("inner_loop_costs", tmp_path)
    combined = next(r for r in payload["prototypes"] if r["variant"].startswith("combined"))
    assert combined["encode_max_abs_diff"] < 1e-10 and combined["meta_grad_max_abs_diff"] < 1e-10
    assert payload["profiles"]["encode"]["aten_calls"] > 0


@pytest.mark.timeout(300)
def test_serving_quick(tmp_path):
    payload = run_quick("serving", tmp_path)
    assert payload["mode"] == "inprocess"
    kinds = {r["kind"]: r for r in payload["rows"]}
    assert kinds["all"]["ok"] > 0
    assert kinds["cold"]["cache_flag_wrong"] == 0 and kinds["cached"]["cache_flag_wrong"] == 0


@pytest.mark.timeout(300)
def test_frozen_memory_quick(tmp_path):
    # a subprocess: its ranks are spawned processes, which must import the script by its own name
    subprocess.run([sys.executable, str(BENCH / "frozen_memory.py"), "--quick", "--out-dir", str(tmp_path)],
                   cwd=ROOT, check=True, timeout=280)
    stem = tmp_path / "frozen_memory_quick"
    assert all(stem.with_suffix(x).stat().st_size > 0 for x in (".json", ".md", ".png"))
    payload = json.loads(stem.with_suffix(".json").read_text())
    rows = {r["mode"]: r for r in payload["rows"]}
    assert rows["ddp"]["frozen_in_step_mib"] == rows["fsdp"]["frozen_in_step_mib"]  # FSDP2 gathers for the step
    assert rows["fsdp full shard"]["frozen_in_step_mib"] < rows["ddp"]["frozen_in_step_mib"]
    assert rows["fsdp full shard"]["gathers_per_step"] > 0


@pytest.mark.timeout(300)
def test_bf16_cpu_quick(tmp_path):
    payload = run_quick("bf16_cpu", tmp_path)
    works = {(r["dtype"], r["what"]) for r in payload["rows"]}
    assert works == {(d, w) for d in ("float32", "bfloat16") for w in ("meta-step", "encode")}
    assert all(r["seconds"] > 0 and r["gflop"] > 0 and r["roof_fraction"] > 0 for r in payload["rows"])
    assert payload["roofs"]["bfloat16"]["dtype"] == "bfloat16" and 0.9 < payload["cosine"] <= 1.0 + 1e-6


@pytest.mark.timeout(300)
def test_bf16_meta_gradient_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_script_bf16_meta_gradient", BENCH / "bf16_meta_gradient.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    payload = module.main(["--quick", "--out-dir", str(tmp_path)])
    assert [r["variant"] for r in payload["rows"]] == ["inner.eps=1e-8", "inner.optimizer=sgd inner.lr=0.3"]
    assert all(-1.0 <= r["cos_all"] <= 1.0 + 1e-6 and r["norm_ratio_lora_B"] > 0 for r in payload["rows"])
    assert (tmp_path / "bf16_meta_gradient_quick.md").read_text().startswith("# bf16 vs fp32 meta-gradient")


def test_bf16_meta_gradient_starts_from_a_meta_checkpoint(tmp_path):
    from perk_ray.checkpoint import save_meta_checkpoint
    from perk_ray.config import load_config
    from perk_ray.meta import MetaParams
    from perk_ray.model import load_base_model

    spec = importlib.util.spec_from_file_location("bench_script_bf16_meta_gradient", BENCH / "bf16_meta_gradient.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = load_config("tiny", ["inner.steps=2", "inner.truncation=1"])
    base = load_base_model(cfg.model, cfg.lora)
    meta = MetaParams.from_base(base, cfg)
    with torch.no_grad():  # a moved LoRA initialisation and a weighting model that weighs every token up
        for tensor in meta.lora_init.values():
            tensor.add_(0.05 * torch.randn_like(tensor))
        meta.weighting.net[2].bias.fill_(50.0)
    save_meta_checkpoint(tmp_path / "ckpt", base, meta, cfg)
    args = ["--quick", "--variants", "inner.eps=1e-4", "--records", "2"]
    fresh = module.main([*args, "--out-dir", str(tmp_path / "fresh")])
    loaded = module.main([*args, "--checkpoint", str(tmp_path / "ckpt"), "--out-dir", str(tmp_path / "loaded")])
    assert loaded["checkpoint"] == str(tmp_path / "ckpt") and loaded["records"] == 2
    assert loaded["rows"][0]["outer_loss_fp32"] != pytest.approx(fresh["rows"][0]["outer_loss_fp32"], rel=1e-4)
    markdown = (tmp_path / "loaded" / "bf16_meta_gradient_quick.md").read_text()
    assert "mean over 2 task(s), from " in markdown and "| inner.eps=1e-4 | " in markdown
