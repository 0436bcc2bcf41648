"""Fact layout relative to chunks, accuracy split by it, and where an answered place comes from."""

from __future__ import annotations

import pytest

from perk_ray.data import TaskRecord
from perk_ray.evaluation.diagnostics import accuracy_by_layout, answer_source, answer_sources, fact_layout
from perk_ray.model import load_tokenizer

FILLER = "The lane was quiet. " * 4  # 80 bytes: the tiny tokenizer has one token per byte


def _record(rid: str, context: list[str], name: str = "Mary") -> TaskRecord:
    return TaskRecord(id=rid, task="babilong-qa1", context=context, question=f"Where is {name}?",
                      answer=["hallway"])


@pytest.mark.parametrize("context, layout", [
    (["Mary went to the kitchen. " + FILLER + "John moved to the garden."], "one move"),
    (["Mary went to the kitchen. Mary moved to the hallway. " + FILLER], "moves in one chunk"),
    (["Mary went to the kitchen. " + FILLER + "Mary went back to the hallway."], "moves across chunks"),
    (["Mary went to the kitchen.", "Mary journeyed to the hallway."], "moves across chunks"),  # two segments
])
def test_fact_layout(context, layout):
    assert fact_layout(_record("r", context), load_tokenizer("tiny"), chunk_tokens=64) == layout


def test_fact_layout_with_packed_segments():
    context = ["Mary went to the kitchen.", "Mary journeyed to the hallway."]  # 26 + 31 tokens
    assert fact_layout(_record("r", context), load_tokenizer("tiny"), 64, packed=True) == "moves in one chunk"
    assert fact_layout(_record("r", context), load_tokenizer("tiny"), 16, packed=True) == "moves across chunks"


def test_non_location_questions_have_no_layout():
    record = TaskRecord(id="r", task="kv-recall", context=["x"], question="What is the code of fig?", answer=["2"])
    assert fact_layout(record, load_tokenizer("tiny"), 64) is None


def test_accuracy_by_layout_groups_and_intervals():
    records = [_record("a", ["Mary went to the hallway."]),
               _record("b", ["Mary went to the kitchen. " + FILLER + "Mary went to the hallway."])]
    rows = [{"id": "a", "method": "perk", "length": 256, "babilong": True},
            {"id": "b", "method": "perk", "length": 256, "babilong": False},
            {"id": "b", "method": "icl", "length": 256, "babilong": True}]
    table = accuracy_by_layout(rows, records, load_tokenizer("tiny"), 64)
    got = {(e["method"], e["layout"]): (e["n"], e["accuracy"]) for e in table}
    assert got == {("perk", "one move"): (1, 1.0), ("perk", "moves across chunks"): (1, 0.0),
                   ("icl", "moves across chunks"): (1, 1.0)}
    assert all(0.0 <= e["low"] <= e["accuracy"] <= e["high"] <= 1.0 for e in table)


STORY = ["Mary went to the kitchen. John moved to the garden.",
         "Mary went back to the hallway. Sandra went to the office."]


@pytest.mark.parametrize("prediction, source", [
    ("hallway", "the latest place"), ("The hallway.", "the latest place"),
    ("kitchen", "an earlier place of the person"),
    ("garden", "another person's place"), ("bedroom", "not in the context"), ("<<<<", "no place"),
    ("kitchen, then hallway", "an earlier place of the person"),  # the first place named counts
])
def test_answer_source(prediction, source):
    assert answer_source(prediction, _record("r", STORY)) == source


def test_answer_sources_shares_and_the_uniform_null():
    records = [_record("a", STORY), _record("b", ["Mary went to the hallway. John went to the garden."])]
    rows = [{"id": "a", "method": "perk", "length": 256, "prediction": "garden"},
            {"id": "b", "method": "perk", "length": 256, "prediction": "garden"}]
    perk, null = answer_sources(rows, records)
    assert perk["n"] == 2 and perk["another person's place"] == 1.0 and perk["top_share"] == 1.0
    # a: 4 places, Mary's latest 1, her earlier 1; b: 2 places, her latest 1, no earlier one
    assert null["method"] == "uniform over the context's places" and null["n"] == 2
    assert null["the latest place"] == pytest.approx((1 / 4 + 1 / 2) / 2)
    assert null["an earlier place of the person"] == pytest.approx((1 / 4 + 0) / 2)
    assert null["another person's place"] == pytest.approx((2 / 4 + 1 / 2) / 2)


def test_fact_signal_measures_the_supporting_sentence(tmp_path):
    from perk_ray.config import load_config
    from perk_ray.engine import PerkEngine
    from perk_ray.evaluation.diagnostics import fact_signal

    engine = PerkEngine.from_config(load_config("tiny", ["inner.chunk_tokens=32"]))
    record = _record("r", ["Mary went to the kitchen. " + FILLER + "Mary went back to the hallway."])
    record.support = ["Mary went back to the hallway."]
    signal = fact_signal(engine, record)
    assert signal["fact_tokens"] == len(" Mary went back to the hallway.") - 1  # the byte after the space onwards
    assert signal["chunks"] == 5  # 137 bytes with the leading space, 32 per chunk
    assert signal["fact_ce_after"] < signal["fact_ce_before"] and signal["other_ce_after"] < signal["other_ce_before"]
    assert signal["fact_weight"] > 0 and signal["other_weight"] > 0


def test_fact_signal_by_length_averages_per_length():
    from perk_ray.config import load_config
    from perk_ray.engine import PerkEngine
    from perk_ray.evaluation.diagnostics import SIGNAL_KEYS, fact_signal_by_length

    engine = PerkEngine.from_config(load_config("tiny", ["inner.chunk_tokens=32"]))
    records = []
    for i, length in enumerate((128, 128, 256)):
        record = _record(str(i), ["Mary went to the kitchen. " + FILLER * (length // 128)])
        record.support, record.target_length = ["Mary went to the kitchen."], length
        records.append(record)
    means = fact_signal_by_length(engine, records, per_length=1)
    assert list(means) == [128, 256] and set(means[128]) == set(SIGNAL_KEYS)


def test_diagnose_job_measures_the_fact_signal_without_an_evaluation(run_job, meta_checkpoint, tmp_path):
    from perk_ray.data import write_parquet

    records = []
    for i, length in enumerate((128, 256)):
        record = _record(str(i), ["Mary went to the kitchen. " + FILLER * (length // 128)])
        record.support, record.target_length = ["Mary went to the kitchen."], length
        records.append(record)
    data = write_parquet(records, tmp_path / "dev.parquet")
    code, stdout, _ = run_job("diagnose.py", "--checkpoint", meta_checkpoint, "--data", data,
                              "--output", tmp_path / "signal", "--signal-records", "1")
    assert code == 0
    table = (tmp_path / "signal" / "fact_signal.md").read_text()
    assert [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| 1") or
            line.startswith("| 2")] == ["128", "256"]
    assert not (tmp_path / "signal" / "layout.md").exists() and "wrote" in stdout


def test_diagnose_job_names_what_it_needs(run_job, tmp_path):
    code, _, err = run_job("diagnose.py", "--data", tmp_path / "none.parquet")
    assert code == 2 and "--results" in err and "--checkpoint" in err
