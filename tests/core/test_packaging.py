"""The installable package: console scripts, version, packages and markers; a real install when asked (slow)."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import perk_ray

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_console_scripts_resolve_to_callables():
    scripts = PROJECT["project"]["scripts"]
    assert {"perk-train", "perk-eval", "perk-data", "perk-plan", "perk-tune", "perk-baseline"} <= set(scripts)
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr)), name


def test_version_matches_pyproject():
    assert perk_ray.__version__ == PROJECT["project"]["version"]


def test_packages_are_importable_and_typed():
    include = PROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in ("jobs", "serving", "tune_spaces"):
        assert package in include and (ROOT / package / "__init__.py").exists()
    assert (ROOT / "perk_ray" / "py.typed").exists()
    assert {"mlflow", "wandb"} <= set(PROJECT["project"]["optional-dependencies"])


@pytest.mark.slow
def test_pip_install_gives_working_console_scripts(tmp_path):
    """``pip install .`` of a copy of the checkout (no dependencies: those of the venv) into a throwaway target."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    source = tmp_path / "src"
    for name in files:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    for package in ("jobs", "serving", "tune_spaces", "perk_ray"):
        assert (target / package / "__init__.py").exists()
    assert (target / "perk_ray" / "py.typed").exists()
    out = subprocess.run([str(target / "bin" / "perk-plan"), "--preset", "tiny"], cwd=tmp_path, env=env,
                         check=True, capture_output=True, text=True).stdout
    assert "tiny" in out
    for script in ("perk-train", "perk-eval", "perk-data", "perk-tune", "perk-baseline"):
        result = subprocess.run([str(target / "bin" / script), "--help"], cwd=tmp_path, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0 and "usage" in result.stdout, (script, result.stderr[-500:])
