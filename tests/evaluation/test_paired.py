"""Paired comparison of two evaluations: the exact McNemar test against binomial values computed by hand, matching
by id, and the job's table and errors."""

from __future__ import annotations

import json

import pytest

from perk_ray.errors import InputError
from perk_ray.evaluation.paired import compare_paired, exact_mcnemar


def test_exact_mcnemar_is_the_two_sided_binomial_test_on_discordant_pairs():
    assert exact_mcnemar(0, 6) == pytest.approx(2 / 64)  # all 6 discordant pairs one way: 2 * 0.5^6
    assert exact_mcnemar(12, 7) == pytest.approx(0.3593, abs=1e-4)  # R: binom.test(7, 19)$p.value
    assert exact_mcnemar(7, 12) == exact_mcnemar(12, 7)
    assert exact_mcnemar(5, 5) == 1.0 and exact_mcnemar(0, 0) == 1.0


def _row(id_: str, length: int, right: bool | None) -> dict:
    return {"id": id_, "length": length, "method": "perk", "babilong": right}


def test_pairs_are_matched_by_id_per_length_and_unscored_or_unmatched_rows_left_out():
    a = [_row("x1", 256, True), _row("x2", 256, False), _row("x3", 256, True), _row("y1", 1024, True),
         _row("only-a", 256, True), _row("unscored", 256, True)]
    b = [_row("x3", 256, True), _row("x2", 256, True), _row("x1", 256, False), _row("y1", 1024, False),
         _row("unscored", 256, None)]
    short, long_ = compare_paired(a, b)
    assert (short.length, short.a.n, short.a.mean, short.b.mean, short.a_only, short.b_only) == (256, 3, 2 / 3, 2 / 3,
                                                                                                  1, 1)
    assert (long_.length, long_.a_only, long_.b_only, long_.p_value) == (1024, 1, 0, 1.0)
    with pytest.raises(InputError, match="share no scored example ids"):
        compare_paired(a, [_row("z", 256, True)])


def test_compare_answers_job_writes_the_table_and_refuses_bad_input(run_job, tmp_path):
    for name, answers in (("a", [True, True, False]), ("b", [False, True, False])):
        rows = [_row(f"x{i}", 256, right) for i, right in enumerate(answers)]
        (tmp_path / f"{name}.json").write_text(json.dumps({"examples": rows}))
    code, out, _ = run_job("compare_answers.py", "--output", tmp_path / "out", f"new={tmp_path / 'a.json'}",
                           f"old={tmp_path / 'b.json'}")
    assert code == 0
    table = (tmp_path / "out" / "paired.md").read_text()
    assert "| 256 | 3 | 66.7 [20.8, 93.9] | 33.3 [6.1, 79.2] | 1 | 0 | 1.000 |" in table and table in out + "\n"
    code, _, err = run_job("compare_answers.py", "--output", tmp_path / "out", "new", f"old={tmp_path / 'b.json'}")
    assert code == 2 and "expected LABEL=RESULTS_JSON" in err
    code, _, err = run_job("compare_answers.py", "--output", tmp_path / "out", f"new={tmp_path / 'missing.json'}",
                           f"old={tmp_path / 'b.json'}")
    assert code == 2 and "no such RESULTS_JSON" in err
