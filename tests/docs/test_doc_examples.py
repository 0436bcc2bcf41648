"""The examples of README.md and docs/ marked runnable run as written, on the tiny preset: the docs cannot drift.

Mark a fenced ``python`` or ``bash`` block by putting ``<!-- runnable -->`` (quick) or ``<!-- runnable: slow -->``
(starts Ray, meta-trains...) on the line before it. A page's blocks run in order, in one scratch directory, so a later
block may use what an earlier one wrote; quick blocks must not need slow ones.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"^<!-- runnable(: slow)? -->\s*$")
FENCE = re.compile(r"^```(python|bash)\s*$")
PRESET = re.compile(r"--preset[ =](\S+)|load_config\(\"([^\"]+)\"")


@dataclass(frozen=True)
class Example:
    page: Path
    line: int
    language: str
    code: str
    slow: bool

    def __str__(self) -> str:
        return f"{self.page.name}:{self.line}"


def examples(page: Path) -> list[Example]:
    lines = page.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        mark = MARK.match(line)
        if not mark:
            continue
        fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert fence, f"{page.name}:{i + 1}: a runnable mark must stand right before a ```python or ```bash block"
        end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
        found.append(Example(page, i + 3, fence.group(1), "\n".join(lines[i + 2:end]), bool(mark.group(1))))
    return found


def run_page(page: Path, workdir: Path, slow: bool) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for example in examples(page):
        if example.slow and not slow:
            continue
        command = [sys.executable, "-c", example.code] if example.language == "python" else \
            ["bash", "-euo", "pipefail", "-c", example.code]
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{example} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def test_examples_are_marked_and_use_the_tiny_preset():
    found = [example for page in PAGES for example in examples(page)]
    assert len(found) >= 5 and any(not e.slow for e in found)
    for example in found:
        presets = {a or b for a, b in PRESET.findall(example.code)}
        assert presets <= {"tiny"}, f"{example} runs presets {presets}: runnable examples use the tiny preset"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_quick_examples_run(page, tmp_path):
    run_page(page, tmp_path, slow=False)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_all_examples_run(page, tmp_path):
    run_page(page, tmp_path, slow=True)
