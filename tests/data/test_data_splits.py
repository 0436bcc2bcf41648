"""Splits share no story or record set; counts follow the fractions; same arguments, same bytes."""

from __future__ import annotations

import pytest
from data_oracle import BABI_FACT

from perk_ray.data import make_splits, write_parquet
from perk_ray.data.splits import split_counts
from perk_ray.errors import InputError


def assert_disjoint(splits: dict, key) -> None:
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not {key(r) for r in splits[a]} & {key(r) for r in splits[b]}, (a, b)


def test_small_story_space_still_gives_disjoint_splits():
    # one key-value pair per record: 640 possible worlds, so the splits would collide without the exclusion
    splits = make_splits("kv-recall", lengths=[64, 96], count=150, seed=0, tokenizer=None, num_pairs=1)
    assert {name: len(records) for name, records in splits.items()} == {"train": 240, "dev": 30, "test": 30}
    assert_disjoint(splits, lambda r: r.source_id)
    assert_disjoint(splits, lambda r: r.support[0])
    assert {r.target_length for r in splits["test"]} == {64, 96}


@pytest.mark.parametrize("task", ["babilong-qa1", "babilong-qa4", "student-records"])
def test_no_story_or_record_set_in_two_splits(task):
    splits = make_splits(task, lengths=[1024], count=40, seed=1, tokenizer=None)
    assert_disjoint(splits, lambda r: r.source_id)
    if task == "student-records":
        assert_disjoint(splits, lambda r: tuple(r.context))
    else:
        assert_disjoint(splits, lambda r: tuple(m.group(0) for m in BABI_FACT.finditer(r.joined_context())))
    assert all(r.split == name for name, records in splits.items() for r in records)


def test_same_arguments_same_bytes(tmp_path):
    for run in ("a", "b"):
        splits = make_splits("babilong-qa3", lengths=[1024], count=10, seed=5, tokenizer=None,
                             fractions={"train": 0.5, "test": 0.5})
        for name, records in splits.items():
            write_parquet(records, tmp_path / run / f"{name}.parquet")
    for name in ("train", "test"):
        assert (tmp_path / "a" / f"{name}.parquet").read_bytes() == (tmp_path / "b" / f"{name}.parquet").read_bytes()


def test_split_counts_and_bad_fractions():
    assert split_counts(100, {"train": 0.8, "dev": 0.1, "test": 0.1}) == {"train": 80, "dev": 10, "test": 10}
    assert split_counts(7, {"train": 0.8, "dev": 0.1, "test": 0.1}) == {"train": 5, "dev": 1, "test": 1}
    assert sum(split_counts(296, {"a": 200 / 296, "b": 32 / 296, "c": 64 / 296}).values()) == 296
    with pytest.raises(InputError, match="sum to 0.9, not 1"):
        make_splits("kv-recall", lengths=[128], count=5, seed=0, tokenizer=None, fractions={"train": 0.9})
    with pytest.raises(InputError, match="fractions must be in"):
        make_splits("kv-recall", lengths=[128], count=5, seed=0, tokenizer=None, fractions={"a": 1.5, "b": -0.5})
    with pytest.raises(InputError, match="count=0"):
        make_splits("kv-recall", lengths=[128], count=0, seed=0, tokenizer=None)
