"""Generated tasks: determinism, lengths, fact depths, answers derivable from the facts, clean haystack."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest
from data_oracle import BABI_FACT, babi_answer, check_depths, student_answer

from perk_ray.data import TASKS, TokenCounter, answer_labels, generate, resolve_tokenizer
from perk_ray.data import babi, kv, prose
from perk_ray.data.tasks import BABILONG_TASKS
from perk_ray.errors import InputError

LENGTH_TOLERANCE = 0.02  # context_tokens in [target * (1 - tolerance), target]


def check_lengths(records, target: int) -> None:
    for r in records:
        assert target * (1 - LENGTH_TOLERANCE) <= r.context_tokens <= target, (r.id, r.context_tokens)


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_records_other_seed_other_records(task):
    first = generate(task, count=4, target_tokens=1024, seed=3)
    assert first == generate(task, count=4, target_tokens=1024, seed=3)
    other = generate(task, count=4, target_tokens=1024, seed=4)
    assert [r.context for r in first] != [r.context for r in other]
    assert len({r.id for r in first}) == 4


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("target", [1024, 4096])
def test_lengths_depths_and_answers(task, target):
    records = generate(task, count=12, target_tokens=target, seed=0)
    check_lengths(records, target)
    check_depths(records)
    labels = answer_labels(task)
    for r in records:
        assert r.task == task and r.target_length == target and r.split == "train"
        assert r.context_tokens == len(r.joined_context().encode())
        expected = student_answer(r) if task == "student-records" else babi_answer(r) if task in BABILONG_TASKS \
            else kv_answer(r)
        assert r.answer[0] == expected, (r.question, r.support, r.answer)
        if labels:
            assert r.answer[0] in labels


def kv_answer(record) -> str:
    key = re.fullmatch(r"What is the code of (\w+)\?", record.question)[1]
    (fact,) = record.support
    return re.fullmatch(rf"The code of {key} is (\w+)\.", fact)[1]


@pytest.mark.parametrize("task", BABILONG_TASKS)
def test_babilong_story_hidden_whole_and_in_order(task):
    for r in generate(task, count=10, target_tokens=2048, seed=1):
        story = [m.group(0) for m in BABI_FACT.finditer(r.joined_context())]
        assert len(story) == r.num_facts >= len(r.support)
        positions = [story.index(s) for s in r.support]
        assert positions == sorted(positions)
        if task != "babilong-qa5":  # the whole story gives the same answer as its support
            assert babi_answer(dataclasses.replace(r, support=story)) == r.answer[0]


def test_no_haystack_gives_one_segment_per_fact():
    for task in ("babilong-qa2", "kv-recall"):
        for r in generate(task, count=5, target_tokens=None, seed=0):
            assert len(r.context) == r.num_facts and r.target_length is None
            check_depths([r])
    r = generate("student-records", count=1, target_tokens=None, seed=0, num_students=7)[0]
    assert len(r.context) == r.num_facts == 7


def test_depth_option_places_the_story():
    for depth in (0.0, 0.5, 1.0):
        for r in generate("kv-recall", count=5, target_tokens=2048, seed=0, depth=depth, num_pairs=1):
            assert abs(r.fact_depths[0] - depth) < 0.05


def test_kv_recall_options_and_distinct_keys():
    for r in generate("kv-recall", count=20, target_tokens=None, seed=0, num_pairs=10):
        keys = [re.fullmatch(r"The code of (\w+) is \w+\.", s)[1] for s in r.context]
        assert len(set(keys)) == 10 and r.num_facts == 10
    assert generate("kv-recall", count=1, target_tokens=None, seed=0)[0].num_facts == 4


def test_student_records_qtypes():
    records = generate("student-records", count=30, target_tokens=2048, seed=0)
    assert {r.qtype for r in records} == {"recall", "relation", "aggregation"}
    only = generate("student-records", count=5, target_tokens=1024, seed=0, qtypes="aggregation")
    assert {r.qtype for r in only} == {"aggregation"}
    for r in records:
        assert all(seg.startswith("Student ") for seg in r.context)


def test_haystack_is_varied_prose_without_task_words():
    rng = random.Random(0)
    text = " ".join(prose.sentences(rng, 20000))
    banned = {*babi.PEOPLE, *babi.QA5_PEOPLE, *babi.LOCATIONS, *babi.OBJECTS, *babi.DIRECTIONS, *kv.VALUES, *kv.KEYS}
    words = re.findall(r"[A-Za-z]+", text)
    assert not {w.lower() for w in words} & {b.lower() for b in banned}
    assert len({w.lower() for w in words}) > 700
    sample = prose.sentences(random.Random(1), 300)
    assert len(set(sample)) > 280


def test_answer_labels_match_babilong_scoring_sets():
    assert answer_labels("babilong-qa1") == ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]
    assert answer_labels("babilong-qa5") == ["Bill", "Fred", "Jeff", "Mary", "apple", "football", "milk"]
    assert answer_labels("kv-recall")[:3] == ["zero", "one", "two"]
    assert answer_labels("student-records") == []
    with pytest.raises(InputError, match="valid tasks: babilong-qa1"):
        answer_labels("qa9")


@pytest.mark.parametrize(("task", "kwargs", "message"), [
    ("nope", {}, "unknown task 'nope'; valid tasks"),
    ("kv-recall", {"pairs": 3}, "unknown option 'pairs' for task kv-recall; its options: num_pairs=4"),
    ("kv-recall", {"num_pairs": 0}, r"num_pairs=0 is outside \[1, 64\]"),
    ("kv-recall", {"depth": 1.5}, r"depth=1.5 is outside \[0, 1\]"),
    ("babilong-qa4", {"facts": 9}, "facts=9 for qa4"),
    ("student-records", {"qtypes": ["gossip"]}, "choose among recall, relation, aggregation"),
])
def test_bad_options_are_refused(task, kwargs, message):
    with pytest.raises(InputError, match=message):
        generate(task, count=1, target_tokens=1024, seed=0, **kwargs)


def test_too_short_targets_are_refused():
    with pytest.raises(InputError, match="too short for student-records"):
        generate("student-records", count=1, target_tokens=100, seed=0)
    with pytest.raises(InputError, match="babilong-qa3 with facts=20"):
        generate("babilong-qa3", count=1, target_tokens=200, seed=0, facts=20)
    with pytest.raises(InputError, match="count=0"):
        generate("kv-recall", count=0, target_tokens=128, seed=0)


def test_small_targets_still_fit():
    records = generate("kv-recall", count=20, target_tokens=128, seed=0)
    assert all(100 <= r.context_tokens <= 128 for r in records)
    check_depths(records)


def test_token_counter_matches_the_tiny_tokenizer():
    tokenizer = resolve_tokenizer("tiny")
    assert resolve_tokenizer("tiny") is tokenizer
    texts = ["Mary went to the kitchen.", "Ünïcödé prose — with dashes.", ""]
    for counter in (TokenCounter(None), TokenCounter(tokenizer)):
        assert counter.count_many(texts) == [len(tokenizer.encode(t, add_special_tokens=False)) for t in texts]
    with_tokenizer = generate("babilong-qa1", count=3, target_tokens=1024, seed=0, tokenizer=tokenizer)
    assert with_tokenizer == generate("babilong-qa1", count=3, target_tokens=1024, seed=0)


def test_smollm2_lengths(smollm2_tokenizer):
    for task, target in (("babilong-qa2", 1024), ("student-records", 2048), ("kv-recall", 512)):
        records = generate(task, count=4, target_tokens=target, seed=0, tokenizer=smollm2_tokenizer)
        check_lengths(records, target)
        check_depths(records)
        for r in records:
            assert r.context_tokens == len(smollm2_tokenizer.encode(r.joined_context(), add_special_tokens=False))


def test_generation_is_fast_enough():
    import time

    start = time.perf_counter()
    generate("babilong-qa2", count=100, target_tokens=4096, seed=0)
    assert time.perf_counter() - start < 10
