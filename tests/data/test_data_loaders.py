"""Real-data loaders on small fixture files in the published formats (JSON / JSONL as published, Parquet
written from them with the hub's nested layout)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from data_oracle import check_depths

from perk_ray.data import load_babilong, load_hotpotqa, load_triviaqa
from perk_ray.errors import InputError


def to_parquet(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_babilong_both_published_layouts(fixtures, tmp_path):
    from_json = load_babilong(fixtures / "babilong", task="qa1", length="1k")
    rows = json.loads((fixtures / "babilong" / "data" / "qa1" / "1k.json").read_text())
    to_parquet(rows, tmp_path / "1k" / "qa1-00000-of-00001.parquet")
    to_parquet(rows[:1], tmp_path / "1k" / "qa10-00000-of-00001.parquet")
    from_parquet = load_babilong(tmp_path, task="qa1", length="1k", split="test", limit=2)
    assert from_json[:2] == from_parquet
    first = from_json[0]
    assert first.task == "babilong-qa1" and first.target_length == 1024 and first.split == "test"
    assert first.context == [rows[0]["input"]] and first.question == "Where is Mary?" and first.answer == ["office"]
    assert first.context_tokens == len(rows[0]["input"]) and first.support == [] and first.fact_depths == []
    assert len({r.source_id for r in from_json}) == 3


def test_babilong_errors(fixtures, tmp_path):
    with pytest.raises(InputError, match="expected one BabiLong file for qa2 at 1k, found none"):
        load_babilong(fixtures / "babilong", task="qa2", length="1k")
    with pytest.raises(InputError, match="use e.g. task='qa1', length='1k'"):
        load_babilong(fixtures / "babilong", task="qa1", length="big")
    with pytest.raises(InputError, match="no such file or directory: /nowhere/babilong.json"):
        load_babilong("/nowhere/babilong.json")
    to_parquet([{"input": "x", "question": "q?"}], tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="lacks column 'target'"):
        load_babilong(tmp_path / "bad.parquet")


def test_hotpotqa_original_and_hub_layouts(fixtures, tmp_path):
    original = load_hotpotqa(fixtures / "hotpotqa" / "hotpot_dev_distractor_sample.json")
    hub_jsonl = fixtures / "hotpotqa" / "hotpot_qa_distractor_validation.jsonl"
    hub = load_hotpotqa(to_parquet(jsonl_rows(hub_jsonl), tmp_path / "validation-00000-of-00001.parquet"))
    assert original == hub == load_hotpotqa(hub_jsonl)
    bridge, comparison = original
    assert bridge.context[0].startswith("The Lantern Keeper: The Lantern Keeper is a 1931 novel")
    assert len(bridge.context) == 4 and bridge.num_facts == 9 and bridge.answer == ["Harrowgate"]
    assert bridge.support == ["It was written by Orla Finch.", "In 1950 she founded the Finch Museum in Harrowgate."]
    assert bridge.qtype == "bridge" and bridge.source_id == "5a8b57f25542995d1e6f1371"
    assert comparison.qtype == "comparison" and len(comparison.support) == 2  # the out-of-range fact is skipped
    check_depths(original)


def test_triviaqa_evidence_documents(fixtures, tmp_path, caplog):
    path = fixtures / "triviaqa" / "trivia_qa_rc_validation.jsonl"
    with caplog.at_level(logging.WARNING):
        records = load_triviaqa(path)
    assert "skipped 1 of 3 rows" in caplog.text
    assert records == load_triviaqa(to_parquet(jsonl_rows(path), tmp_path / "validation.parquet"))
    wiki, search = records
    assert wiki.context[0].startswith("Amberley Cross is a market town") and wiki.task == "triviaqa"
    assert wiki.answer == ["Wendle", "River Wendle", "river wendle", "wendle"]
    assert search.context == ["Ada Voss (1801-1870) was a composer who played the cello in the court orchestra."]
    assert load_triviaqa(path, search_results=False) == [wiki]
    assert wiki.source_id == "tc_101" and wiki.target_length is None and wiki.context_tokens > 0
