"""Bad inputs: one-line errors and exit code 2 from the jobs, perk_ray.errors exceptions from the library."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from perk_ray.config import load_config
from perk_ray.engine import PerkEngine
from perk_ray.errors import CheckpointError, InputError
from perk_ray.evaluation import evaluate_records, load_records
from perk_ray.evaluation.baseline_checkpoint import load_baseline_params, read_baseline_info, save_baseline
from perk_ray.evaluation.methods import check_inputs
from perk_ray.model import current_lora_params, load_base_model

from tests.conftest import JOBS


@pytest.fixture(scope="module")
def other_base_icl_ft(tmp_path_factory):
    """An icl-ft checkpoint of another base model (a tiny Qwen2 of another width)."""
    cfg = load_config("tiny", ["model.tiny.hidden_size=32", "model.tiny.intermediate_size=64"])
    base = load_base_model(cfg.model, cfg.lora)
    return save_baseline(tmp_path_factory.mktemp("other") / "icl-ft", base, current_lora_params(base), cfg)


def _one_line_error(code: int, err: str, *fragments: str) -> None:
    """Exit code 2 and one ``error:`` line naming the problem (model-loading progress bars may precede it)."""
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_missing_columns(run_job, meta_checkpoint, tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps({"question": "Where?", "answer": ["garden"]}) + "\n")
    code, _, err = run_job("evaluate.py", "--checkpoint", meta_checkpoint, "--data", data, "--output", tmp_path)
    _one_line_error(code, err, "missing column 'context'", "bad.jsonl")


def test_empty_data(run_job, meta_checkpoint, tmp_path):
    data = tmp_path / "empty.jsonl"
    data.write_text("")
    code, _, err = run_job("evaluate.py", "--checkpoint", meta_checkpoint, "--data", data, "--output", tmp_path)
    _one_line_error(code, err, "no records")


def test_icl_ft_checkpoint_of_another_base_model(run_job, meta_checkpoint, other_base_icl_ft, test_data, tmp_path):
    code, _, err = run_job("evaluate.py", "--checkpoint", meta_checkpoint, "--data", test_data, "--methods",
                           "perk,icl-ft", "--icl-ft-checkpoint", other_base_icl_ft, "--output", tmp_path)
    _one_line_error(code, err, "icl-ft checkpoint", "trained on base 'tiny'")
    assert not (tmp_path / "results.json").exists()


def test_meta_checkpoint_of_another_base_model(run_job, meta_checkpoint, other_base_icl_ft, test_data, tmp_path):
    copy = shutil.copytree(meta_checkpoint, tmp_path / "ckpt")
    record = json.loads((copy / "perk.json").read_text())
    (copy / "perk.json").write_text(json.dumps({**record, "base_fingerprint": "0123456789abcdef"}))
    code, _, err = run_job("evaluate.py", "--checkpoint", copy, "--data", test_data, "--output", tmp_path / "out")
    _one_line_error(code, err, "meta-trained on base", "0123456789abcdef")
    # the same checks without loading a model (the job, and the driver before Ray actors load it)
    with pytest.raises(CheckpointError, match="meta-trained on base"):
        check_inputs(copy, ["perk"], None)
    with pytest.raises(CheckpointError, match="trained on base"):
        check_inputs(meta_checkpoint, ["perk", "icl-ft"], other_base_icl_ft)
    check_inputs(meta_checkpoint, ["perk", "icl"], None)


@pytest.mark.parametrize("args, fragment", [
    (["--methods", "perk,rag"], "unknown method 'rag'"),
    (["--methods", "perk,icl,perk"], "method 'perk' is given more than once"),
    (["--methods", "perk,icl-ft"], "icl-ft needs --icl-ft-checkpoint"),
    (["--limit", "0"], "--limit 0"),
    (["--window", "8"], "window 8 must exceed max_new_tokens 16"),
    (["--max-new-tokens", "0"], "max_new_tokens=0 must be >= 1"),
    (["--overflow", "drop"], "invalid choice: 'drop'"),
    (["--lengths", "4096"], "--lengths [4096]: not in the data"),
    (["--lengths", "1k"], "--lengths '1k': give comma-separated token counts"),
])
def test_bad_options(run_job, meta_checkpoint, test_data, tmp_path, args, fragment):
    code, _, err = run_job("evaluate.py", "--checkpoint", meta_checkpoint, "--data", test_data, "--output",
                           tmp_path, *args)
    _one_line_error(code, err, fragment)


def test_missing_checkpoint_or_training_split(run_job, test_data, tmp_path):
    code, _, err = run_job("evaluate.py", "--checkpoint", tmp_path / "nope", "--data", test_data, "--output", tmp_path)
    _one_line_error(code, err, "does not exist")
    code, _, err = run_job("train_baseline.py", "--data", tmp_path, "--output", tmp_path / "out")
    _one_line_error(code, err, "no train.parquet")


def test_the_job_exits_2_without_a_traceback(tmp_path):
    """The real command line (a subprocess), not only main()."""
    proc = subprocess.run([sys.executable, str(JOBS / "evaluate.py"), "--checkpoint", str(tmp_path), "--data",
                           str(tmp_path / "none.parquet"), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    _one_line_error(proc.returncode, proc.stderr, "incomplete: perk.json is missing")


def test_library_raises_perk_errors(meta_checkpoint, other_base_icl_ft, tmp_path):
    engine = PerkEngine.from_checkpoint(meta_checkpoint)
    with pytest.raises(InputError, match="no records"):
        evaluate_records(engine, [], ["perk"])
    with pytest.raises(CheckpointError, match="trained on base"):
        load_baseline_params(other_base_icl_ft, engine.base, engine.cfg.lora)
    with pytest.raises(CheckpointError, match="PERK meta-checkpoint"):
        read_baseline_info(meta_checkpoint)
    same_base = save_baseline(tmp_path / "icl-ft", engine.base, current_lora_params(engine.base),
                              load_config("tiny", [f"model.pretrained_dir={engine.cfg.model.pretrained_dir}",
                                                   "lora.alpha=8"]))
    with pytest.raises(CheckpointError, match=r"lora.alpha=8.0 \(evaluated: 16.0\)"):
        load_baseline_params(same_base, engine.base, engine.cfg.lora)
    with pytest.raises(InputError, match="no such file"):
        load_records(tmp_path / "missing.parquet")


def test_lengths_keep_only_those_target_lengths(test_data):
    records = load_records(test_data)
    lengths = sorted({r.target_length for r in records if r.target_length is not None})
    kept = load_records(test_data, lengths=lengths[-1:])
    assert kept and {r.target_length for r in kept} == {lengths[-1]}
    assert len(kept) == sum(r.target_length == lengths[-1] for r in records)
