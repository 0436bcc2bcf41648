"""Answer scoring, bootstrap intervals and aggregation on hand-made cases."""

from __future__ import annotations

import pytest

from perk_ray.data import TaskRecord, write_parquet
from perk_ray.evaluation.aggregate import depth_bin, regime, summarize
from perk_ray.evaluation.metrics import (babilong_match, bootstrap_ci, exact_match, first_sentence, interval,
                                        normalize_answer, wilson_ci)
from perk_ray.errors import InputError
from perk_ray.evaluation.prompts import (CHAT_INSTRUCTION, fit_prompt, icl_prompt, prompt_builder,
                                        question_builder)
from perk_ray.prompts import question_prompt
from perk_ray.evaluation.records import length_bucket, limit_records, load_records
from perk_ray.tokenizer import build_byte_tokenizer

LOCATIONS = ["bathroom", "bedroom", "garden", "hallway", "kitchen", "office"]


@pytest.mark.parametrize("text, expected", [
    ("The Kitchen.", "kitchen"), ("  an   apple, a pear!  ", "apple pear"), ("Theatre", "theatre"),
    ("", ""), ("...", ""), ("New\tYork\n", "new york"),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_exact_match_accepts_any_answer_and_never_an_empty_prediction():
    assert exact_match("the Garden.", ["garden"])
    assert exact_match("two", ["2", "two"]) and exact_match("2", ["2", "two"])
    assert not exact_match("the garden shed", ["garden"])
    assert not exact_match("", ["garden"]) and not exact_match("   ", [""]) and not exact_match("a", ["the"])


def test_babilong_scoring_uses_the_first_sentence_and_ignores_question_labels():
    question = "Where was Mary before the kitchen?"
    assert babilong_match("She was in the garden. Then kitchen.", ["garden"], LOCATIONS, question)
    assert babilong_match("kitchen, then the garden", ["garden"], LOCATIONS, question)  # kitchen is asked about
    assert not babilong_match("garden or office", ["garden"], LOCATIONS, question)  # two candidate labels
    assert not babilong_match("I think. The garden.", ["garden"], LOCATIONS, question)  # not in the first sentence
    assert not babilong_match("", ["garden"], LOCATIONS, question)
    assert babilong_match("Garden", ["Garden"], [loc.capitalize() for loc in LOCATIONS], "Where is John?")
    assert babilong_match("the garden <context> office", ["garden"], LOCATIONS, "Where is John?")
    assert first_sentence("The Office. Later") == "the office"


def test_babilong_scoring_does_not_apply_without_labels():
    assert babilong_match("Ann", ["Ann"], [], "Who?") is None
    assert babilong_match("42", ["42"], LOCATIONS, "How many?") is None


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    a, b = bootstrap_ci(values, seed=3), bootstrap_ci(values, seed=3)
    assert a == b and a.n == 10 and a.mean == pytest.approx(0.7)
    assert 0.3 <= a.low < a.mean < a.high <= 1.0
    assert bootstrap_ci([1, 1, 1]).to_dict() == {"mean": 1.0, "low": 1.0, "high": 1.0, "n": 3}
    assert bootstrap_ci([]) is None


def test_depth_bins_and_length_regimes():
    assert depth_bin(0.0, 5) == "0.00-0.20" and depth_bin(1.0, 5) == "0.80-1.00" and depth_bin(None, 5) is None
    assert [regime(n, [256, 512]) for n in (128, 256, 384, 1024)] == ["shorter", "train", "between", "longer"]


def _row(method, correct, length=128, depth=0.1, task="kv-recall", status="ok", babilong=None):
    return {"method": method, "exact_match": correct, "babilong": babilong, "length": length, "depth": depth,
            "task": task, "status": status, "encode_s": 1.0 if method == "perk" else None, "answer_s": 0.5,
            "encode_peak_mib": 2.0 if method == "perk" else None, "answer_peak_mib": 1.0, "context_tokens": length}


def test_summary_groups_by_method_task_length_and_depth():
    rows = [_row("perk", True), _row("perk", False, length=256, depth=0.9), _row("icl", False, status="truncated"),
            _row("icl", True, length=256, depth=None, status="impossible")]
    summary = summarize(rows, ["perk", "icl"], train_lengths=[128], resamples=50)
    overall = {e["method"]: e for e in summary["overall"]}
    assert overall["perk"]["exact_match"]["mean"] == 0.5 and overall["perk"]["babilong"] is None
    assert overall["icl"]["truncated"] == 1 and overall["icl"]["impossible"] == 1
    assert [(e["method"], e["length"], e["regime"]) for e in summary["by_length"]] == [
        ("perk", 128, "train"), ("perk", 256, "longer"), ("icl", 128, "train"), ("icl", 256, "longer")]
    assert [(e["method"], e["depth_bin"]) for e in summary["by_depth"]] == [
        ("perk", "0.00-0.20"), ("perk", "0.80-1.00"), ("icl", "0.00-0.20")]
    cost = {(e["method"], e["length"]): e for e in summary["cost"]}
    assert cost[("perk", 128)]["total_s"] == 1.5 and ("icl", 256) not in cost  # impossible: no cost


def test_icl_prompt_is_cut_from_the_left_or_skipped():
    tokenizer = build_byte_tokenizer()
    context = ["AAAA first segment", "the needle is here"]
    fits = fit_prompt(tokenizer, context, "Where?", 100, "truncate")
    assert fits.status == "ok" and fits.text == icl_prompt("AAAA first segment\nthe needle is here", "Where?")
    cut = fit_prompt(tokenizer, context, "Where?", 30, "truncate")
    assert cut.status == "truncated" and cut.prompt_tokens <= 30 and cut.text.endswith("here\n\nWhere?\nAnswer:")
    assert cut.text.startswith("needle is here") and cut.dropped_tokens == len("AAAA first segment\nthe ") == 23
    skipped = fit_prompt(tokenizer, context, "Where?", 30, "skip")
    assert skipped.status == "impossible" and skipped.text is None
    assert fit_prompt(tokenizer, context, "Where?", 5, "truncate").status == "impossible"


def _record(i, task, length):
    return TaskRecord(id=str(i), task=task, context=["x"], question="q", answer=["a"], target_length=length)


def test_limit_covers_every_task_and_length_and_buckets_lengths():
    records = [_record(i, "a", 128) for i in range(5)] + [_record(i, "a", 256) for i in range(5, 10)] + [
        _record(10, "b", 128)]
    assert {(r.task, r.target_length) for r in limit_records(records, 3)} == {("a", 128), ("a", 256), ("b", 128)}
    assert [r.id for r in limit_records(records, 4)] == ["0", "1", "5", "10"]
    assert length_bucket(_record(0, "a", None), 700) == 1024 and length_bucket(_record(0, "a", None), 512) == 512
    assert length_bucket(_record(0, "a", 0), 700) == 0  # BabiLong's 0k


def test_a_split_directory_is_evaluated_on_its_test_split(tmp_path):
    write_parquet([_record(0, "kv-recall", 32)], tmp_path / "train.parquet")
    write_parquet([_record(1, "kv-recall", 32), _record(2, "kv-recall", 64)], tmp_path / "test.parquet")
    assert [r.id for r in load_records(tmp_path)] == ["1", "2"]
    assert [r.id for r in load_records(tmp_path / "train.parquet")] == ["0"]
    (tmp_path / "train.parquet").unlink()
    write_parquet([_record(3, "kv-recall", 32)], tmp_path / "qa2.parquet")
    assert sorted(r.id for r in load_records(tmp_path)) == ["1", "2", "3"]  # not a split directory: every file


def test_chat_template_prompt_for_instruct_models():
    tokenizer = build_byte_tokenizer()
    with pytest.raises(InputError, match="no chat template"):
        prompt_builder(tokenizer, "chat")
    tokenizer.chat_template = ("{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}"
                               "{% if add_generation_prompt %}<a>{% endif %}")
    build = prompt_builder(tokenizer, "chat")
    assert build("the context", " Where? ") == f"<u>{CHAT_INSTRUCTION}\n\nthe context\n\nQuestion: Where?</u><a>"
    limit = len(tokenizer.encode(build("", "Where?"), add_special_tokens=False)) + 12  # room for 12 context tokens
    cut = fit_prompt(tokenizer, ["AAAA first segment", "the needle is here"], "Where?", limit, "truncate", build)
    assert cut.status == "truncated" and cut.text.startswith("<u>")
    assert cut.text.endswith("here\n\nQuestion: Where?</u><a>")
    assert prompt_builder(tokenizer, "plain") is icl_prompt


def test_chat_question_prompt_for_ttl_on_instruct_models():
    tokenizer = build_byte_tokenizer()
    with pytest.raises(InputError, match="--ttl-template chat: the model's tokenizer has no chat template"):
        question_builder(tokenizer, "chat")
    assert question_builder(tokenizer, "plain") is question_prompt
    tokenizer.chat_template = ("{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}"
                               "{% if add_generation_prompt %}<a>{% endif %}")
    prompt = question_builder(tokenizer, "chat")(3, " Where is Mary? ")
    assert prompt.startswith("<u>You have memorized 3 documents. Answer the question from the facts stated in them.")
    assert prompt.endswith("one short sentence.\n\nQuestion: Where is Mary?</u><a>")


def test_wilson_interval_matches_reference_values_and_is_not_degenerate_at_zero():
    # reference: Wilson 95% for 0/10 is [0, 0.2775]; for 8/10, [0.4902, 0.9433] (standard tables)
    zero = wilson_ci([0.0] * 10)
    assert zero.mean == 0.0 and zero.low == pytest.approx(0.0, abs=1e-12)
    assert zero.high == pytest.approx(0.2775, abs=1e-4)
    eight = wilson_ci([1.0] * 8 + [0.0] * 2)
    assert (eight.low, eight.high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert interval([1.0, 0.0, 1.0]) == wilson_ci([1.0, 0.0, 1.0])
    assert interval([0.5, 1.0, 0.25], seed=1) == bootstrap_ci([0.5, 1.0, 0.25], seed=1)  # not a proportion
    assert wilson_ci([]) is None
    assert all(e.low <= e.mean <= e.high for e in (wilson_ci([0.0] * n) for n in range(1, 200)))  # plots need it
    assert all(e.low <= e.mean <= e.high for e in (wilson_ci([1.0] * n) for n in range(1, 200)))
