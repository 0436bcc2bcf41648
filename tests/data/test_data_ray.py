"""Records as Ray Datasets: ``ray.data.read_parquet`` of written splits, and in-memory records."""

from __future__ import annotations

import pytest

from perk_ray.data import generate, records_from_rows, to_ray_dataset, write_jsonl, write_parquet


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()


def test_ray_round_trips(ray_local, tmp_path):
    records = generate("kv-recall", count=6, target_tokens=256, seed=0)
    write_parquet(records[:3], tmp_path / "splits" / "a.parquet")
    write_parquet(records[3:], tmp_path / "splits" / "b.parquet")
    write_jsonl(records, tmp_path / "all.jsonl")
    for source in (tmp_path / "splits", tmp_path / "all.jsonl", records):
        rows = sorted(to_ray_dataset(source).take_all(), key=lambda row: row["id"])
        assert records_from_rows(rows) == records
