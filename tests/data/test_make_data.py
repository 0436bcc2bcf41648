"""The make_data command: Parquet splits and a summary, or one-line errors with exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from perk_ray.cli import main_preset
from perk_ray.config import load_config
from perk_ray.data import make_splits, read_records, write_parquet

SCRIPT = Path(__file__).resolve().parents[2] / "jobs" / "make_data.py"


def make_data(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)


def test_writes_splits_summary_and_same_bytes(tmp_path):
    out = tmp_path / "qa2"
    done = make_data("--task", "babilong-qa2", "--lengths", "1k,2k", "--count", "10", "--seed", "7", "--output",
                     str(out), "--preset", "tiny")
    assert done.returncode == 0, done.stderr
    assert "lengths in tokens of tiny (preset tiny)" in done.stdout
    for row in (r"train\s+16", r"dev\s+2", r"test\s+2", r"1k\s+10\s+\d+ / [\d.]+ / \d+", r"2k\s+10",
                r"fact depth\s+0-0.2"):
        assert re.search(rf"^{row}", done.stdout, re.MULTILINE), row
    assert sorted(p.name for p in out.iterdir()) == ["dev.parquet", "test.parquet", "train.parquet"]
    assert len(read_records(out / "train.parquet")) == 16
    splits = make_splits("babilong-qa2", lengths=[1024, 2048], count=10, seed=7, tokenizer=None)
    for name, records in splits.items():
        again = write_parquet(records, tmp_path / "again" / f"{name}.parquet")
        assert again.read_bytes() == (out / f"{name}.parquet").read_bytes()


def test_lengths_default_to_the_main_presets_tokenizer(tmp_path):
    done = make_data("--task", "kv-recall", "--lengths", "64", "--count", "2", "--output", str(tmp_path / "kv"))
    assert done.returncode == 0, done.stderr
    preset = main_preset()
    assert f"lengths in tokens of {load_config(preset).model.name} (preset {preset})" in done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "babilong-qa9"], "unknown task 'babilong-qa9'; valid tasks: babilong-qa1, babilong-qa2, "
                                 "babilong-qa3, babilong-qa4, babilong-qa5, student-records, kv-recall"),
    (["--task", "kv-recall", "--lengths", "1x"], "length '1x' is not a number of tokens like 512, 1k or 128k"),
    (["--task", "kv-recall", "--lengths", "1k,0"], "length '0' is outside [1, 1024k] tokens"),
    (["--task", "kv-recall", "--count", "0"], "--count 0: give at least 1 record per length"),
    (["--task", "kv-recall", "--splits", "train=0.8,dev=0.1"], "split fractions sum to 0.9, not 1"),
    (["--task", "kv-recall", "--splits", "train:0.8"], "split 'train:0.8' is not NAME=FRACTION"),
    (["--task", "kv-recall", "--tokenizer", "./no/such/dir"], "tokenizer './no/such/dir': no such directory"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, args, message):
    done = make_data(*args, "--output", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {done.stderr.strip().removeprefix('error: ')}"
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()
