"""The record schema through Parquet, JSONL and datasets, and clear errors on bad input files."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perk_ray.data import (
    ARROW_SCHEMA,
    TaskRecord,
    generate,
    read_records,
    records_from_rows,
    to_hf_dataset,
    write_jsonl,
    write_parquet,
)
from perk_ray.data.schema import FIELD_NAMES
from perk_ray.errors import InputError


@pytest.fixture(scope="module")
def records() -> list[TaskRecord]:
    return (generate("babilong-qa2", count=3, target_tokens=512, seed=0)
            + generate("student-records", count=2, target_tokens=None, seed=0))


def test_arrow_schema_matches_the_dataclass():
    assert tuple(ARROW_SCHEMA.names) == FIELD_NAMES
    assert ARROW_SCHEMA.field("context").type == pa.list_(pa.string())
    assert ARROW_SCHEMA.field("target_length").nullable


def test_parquet_round_trip(tmp_path, records):
    path = write_parquet(records, tmp_path / "sub" / "a.parquet")
    assert pq.read_schema(path).names == list(FIELD_NAMES)
    assert read_records(path) == records
    write_parquet(records, tmp_path / "b.parquet")
    assert path.read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_jsonl_round_trip_and_directories(tmp_path, records):
    write_jsonl(records[:2], tmp_path / "d" / "a.jsonl")
    write_parquet(records[2:], tmp_path / "d" / "b.parquet")
    assert read_records(tmp_path / "d" / "a.jsonl") == records[:2]
    assert read_records(tmp_path / "d") == records
    first = json.loads((tmp_path / "d" / "a.jsonl").read_text().splitlines()[0])
    assert list(first) == list(FIELD_NAMES)


def test_hf_datasets_round_trip(tmp_path, records, monkeypatch):
    import datasets

    dataset = to_hf_dataset(records)
    assert dataset.column_names == list(FIELD_NAMES) and len(dataset) == len(records)
    assert records_from_rows(dataset) == records
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    loaded = datasets.Dataset.from_parquet(str(write_parquet(records, tmp_path / "r.parquet")),
                                           cache_dir=str(tmp_path / "cache"))
    assert records_from_rows(loaded) == records


def test_babilong_columns_and_derived_metadata(tmp_path):
    rows = [{"input": "Mary went to the office. It rained.", "question": "Where is Mary?", "target": "office"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "qa1.parquet")
    (record,) = read_records(tmp_path / "qa1.parquet")
    assert record.context == [rows[0]["input"]] and record.answer == ["office"]
    assert record.context_chars == len(rows[0]["input"]) == record.context_tokens
    assert record.id == "qa1-0" and record.source_id == "qa1-0"
    (with_support,) = records_from_rows([{"context": ["a b", "Mary went to the office."], "question": "q?",
                                          "answer": "office", "support": ["Mary went to the office."]}])
    assert with_support.fact_depths == [round(4 / 28, 6)] and with_support.answer == ["office"]


@pytest.mark.parametrize(("content", "name", "message"), [
    (None, "missing.parquet", "no such file or directory"),
    ("", "empty.jsonl", "no records"),
    ('{"context": ["x"], "question": "q?"}\n', "a.jsonl", "row 0: missing column 'answer'"),
    ('{"context": ["x"], "question": "q?", "answer": []}\n', "a.jsonl", "column 'answer' is empty"),
    ('{"context": "  ", "question": "q?", "answer": "a"}\n', "a.jsonl", "column 'context' is empty"),
    ('{"context": 3, "question": "q?", "answer": "a"}\n', "a.jsonl", "'context' must be a string or a list"),
    ('{"context": ["x"], "question": "", "answer": "a"}\n', "a.jsonl", "'question' is empty"),
    ('{"context": ["x"]\n', "a.jsonl", "a.jsonl:1: invalid JSON line"),
    ('{"context": "x", "question": "q?", "answer": "a", "num_facts": "many"}', "a.jsonl", "has the wrong type"),
    ("x,y\n", "a.csv", "unsupported file type '.csv'"),
])
def test_bad_files_name_the_problem(tmp_path, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_records(path)


def test_empty_parquet_and_empty_directory(tmp_path):
    write_parquet([], tmp_path / "empty.parquet")
    with pytest.raises(InputError, match="no records"):
        read_records(tmp_path / "empty.parquet")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(InputError, match="no .parquet, .jsonl, .json files"):
        read_records(tmp_path / "nothing")
