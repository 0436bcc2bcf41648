"""A killed evaluation resumes from its journal: the records already done are not run again, the rows equal an
uninterrupted run's, a line cut by the kill is ignored, and rows of a different evaluation are refused."""

from __future__ import annotations

import pytest

import perk_ray.evaluation.runner as runner
from perk_ray.config import load_config
from perk_ray.data import generate
from perk_ray.engine import PerkEngine
from perk_ray.errors import InputError
from perk_ray.evaluation import EvalOptions, evaluate_records

METHODS = ["perk", "closed-book"]
OPTIONS = EvalOptions(max_new_tokens=4, resamples=20)
META = {"checkpoint": "ckpt", "data": "test.parquet", "overrides": []}
RUN_RECORD = runner.run_record
SAME = ("id", "method", "prediction", "generation", "exact_match", "inner_losses")


class Killed(Exception):
    pass


def comparable(rows):
    return [{k: row[k] for k in SAME} for row in rows]


@pytest.fixture(scope="module")
def setup():
    engine = PerkEngine.from_config(load_config("tiny", ["inner.steps=1", "inner.truncation=0"]))
    records = generate("kv-recall", count=4, target_tokens=None, seed=5, split="test")
    return engine, records, evaluate_records(engine, records, METHODS, OPTIONS)


def counting_run_record(monkeypatch, kill_after: int | None = None) -> list[str]:
    calls: list[str] = []

    def run_record(engine, runners, index, record):
        if kill_after is not None and len(calls) == kill_after:
            raise Killed
        calls.append(record.id)
        return RUN_RECORD(engine, runners, index, record)

    monkeypatch.setattr(runner, "run_record", run_record)
    return calls


def test_killed_evaluation_resumes_where_it_stopped(setup, tmp_path, monkeypatch):
    engine, records, uninterrupted = setup
    journal = tmp_path / "rows.partial.jsonl"
    counting_run_record(monkeypatch, kill_after=2)
    with pytest.raises(Killed):
        evaluate_records(engine, records, METHODS, OPTIONS, journal=journal, meta=META)
    with journal.open("a") as handle:
        handle.write('{"key": "cut by the kill", "ro')  # a line the kill left half written
    calls = counting_run_record(monkeypatch)
    resumed = evaluate_records(engine, records, METHODS, OPTIONS, journal=journal, meta=META)
    assert calls == [r.id for r in records[2:]]  # only the two records the kill lost
    assert comparable(resumed.rows) == comparable(uninterrupted.rows)
    assert [r["index"] for r in resumed.rows] == [r["index"] for r in uninterrupted.rows]
    assert resumed.summary["overall"] == uninterrupted.summary["overall"]
    calls = counting_run_record(monkeypatch)
    fewer = evaluate_records(engine, records[1:3], METHODS, OPTIONS, journal=journal, meta=META)
    assert calls == [] and comparable(fewer.rows) == comparable(uninterrupted.rows[2:6])  # a smaller --limit


def test_rows_of_another_evaluation_are_refused(setup, tmp_path):
    engine, records, _ = setup
    journal = tmp_path / "rows.partial.jsonl"
    evaluate_records(engine, records[:1], METHODS, OPTIONS, journal=journal, meta=META)
    with pytest.raises(InputError, match="differs in: methods"):
        evaluate_records(engine, records[:1], ["perk"], OPTIONS, journal=journal, meta=META)
    with pytest.raises(InputError, match="differs in: checkpoint"):
        evaluate_records(engine, records[:1], METHODS, OPTIONS, journal=journal, meta={**META, "checkpoint": "b"})
