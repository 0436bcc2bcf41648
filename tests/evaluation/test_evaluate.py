"""End to end: the evaluation job's outputs, Ray actors matching in-process, and a meta-trained checkpoint
scoring above the un-adapted initialisation."""

from __future__ import annotations

import json

import matplotlib.image
import pytest
import ray

from perk_ray.engine import PerkEngine
from perk_ray.evaluation import EvalOptions, evaluate_records, load_records
from perk_ray.evaluation.parallel import evaluate_parallel
from perk_ray.evaluation.prompts import question_builder

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
METHODS = ["perk", "ttl", "closed-book", "icl", "icl-ft"]
TIMING = {"encode_s", "answer_s", "encode_peak_mib", "answer_peak_mib"}


def test_job_writes_results_tables_and_plots(run_job, meta_checkpoint, icl_ft_checkpoint, test_data, tmp_path):
    out = tmp_path / "eval"
    code, stdout, _ = run_job("evaluate.py", "--checkpoint", meta_checkpoint, "--data", test_data, "--methods",
                              ",".join(METHODS), "--icl-ft-checkpoint", icl_ft_checkpoint, "--output", out,
                              "--max-new-tokens", 8, "--resamples", 200, "--no-progress")
    assert code == 0 and "perk: exact match" in stdout
    assert not (out / "rows.partial.jsonl").exists()  # the journal of a finished evaluation is gone
    results = json.loads((out / "results.json").read_text())
    rows = results["examples"]
    assert len(rows) == 6 * len(METHODS) and {r["method"] for r in rows} == set(METHODS)
    assert {r["length"] for r in rows} == {32, 64}
    for row in rows:
        assert isinstance(row["exact_match"], bool) and isinstance(row["babilong"], bool)  # kv values are labels
        assert row["status"] == "ok" and row["answer_s"] > 0 and row["answer_peak_mib"] is not None
        assert (row["encode_s"] is not None) == (row["method"] in ("perk", "ttl"))
    summary = results["summary"]
    assert {e["regime"] for e in summary["by_length"]} == {"train", "longer"}
    assert {(e["method"], e["length"]) for e in summary["cost"]} == {(m, n) for m in METHODS for n in (32, 64)}
    assert summary["by_depth"] and summary["by_depth_length"] and summary["by_task"][0]["task"] == "kv-recall"
    assert results["meta"]["checkpoint"] == str(meta_checkpoint) and results["meta"]["window"] == 2048
    markdown = (out / "results.md").read_text()
    for title in ("## Overall", "## Length extrapolation", "## Position robustness", "## Reasoning complexity",
                  "## Latency and peak memory", "BabiLong score", "| perk | 32 |", "| icl | 64 |"):
        assert title in markdown, title
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["accuracy_by_length.png", "accuracy_by_task.png",
                                      "accuracy_depth_length.png", "cost_by_length.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(png)
        assert image.shape[0] >= 300 and image.shape[1] >= 400 and image.std() > 0.05, png.name
        assert f"]({png.name})" in markdown


def test_ttl_answers_from_the_chat_prompt_when_asked(meta_checkpoint, test_data):
    engine = PerkEngine.from_checkpoint(meta_checkpoint)
    tokenizer = engine.base.tokenizer
    tokenizer.chat_template = "{% for m in messages %}<u>{{ m['content'] }}</u>{% endfor %}<a>"
    records = load_records(test_data)[:2]
    plain, chat = (evaluate_records(engine, records, ["ttl", "perk"], EvalOptions(max_new_tokens=4, resamples=20,
                                                                               ttl_template=template)).rows
                   for template in ("plain", "chat"))
    for row in chat:
        prompt = question_builder(tokenizer, "chat" if row["method"] == "ttl" else "plain")(
            engine.encode(records[row["index"]].context).num_chunks, row["question"])
        assert row["prompt_tokens"] == len(tokenizer.encode(prompt, add_special_tokens=False))
    ttl_tokens = {t: [r["prompt_tokens"] for r in rows if r["method"] == "ttl"] for t, rows in (("plain", plain),
                                                                                                ("chat", chat))}
    assert all(c > p for c, p in zip(ttl_tokens["chat"], ttl_tokens["plain"]))  # perk keeps its trained prompt
    assert [r["prompt_tokens"] for r in chat if r["method"] == "perk"] == [
        r["prompt_tokens"] for r in plain if r["method"] == "perk"]


def test_icl_truncates_or_skips_contexts_over_the_window(meta_checkpoint, test_data):
    engine = PerkEngine.from_checkpoint(meta_checkpoint)
    records = load_records(test_data)
    window = 96  # the 64-token contexts plus the question and 8 new tokens do not fit
    cut = evaluate_records(engine, records, ["icl"], EvalOptions(max_new_tokens=8, window=window, resamples=50))
    skip = evaluate_records(engine, records, ["icl"], EvalOptions(max_new_tokens=8, window=window, overflow="skip",
                                                                  resamples=50))
    for rows, status in ((cut.rows, "truncated"), (skip.rows, "impossible")):
        assert [r["status"] for r in rows if r["length"] == 64] == [status] * 3
        assert [r["status"] for r in rows if r["length"] == 32] == ["ok"] * 3
    assert all(0 < r["dropped_tokens"] and r["prompt_tokens"] <= window - 8 for r in cut.rows if r["length"] == 64)
    assert all(not r["exact_match"] and r["note"] for r in skip.rows if r["status"] == "impossible")
    assert {e["length"]: e["impossible"] for e in skip.summary["by_length"]} == {32: 0, 64: 3}


def _without_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    yield
    ray.shutdown()


def test_ray_actors_give_the_in_process_results(local_ray, meta_checkpoint, test_data):
    records = load_records(test_data)
    options = EvalOptions(max_new_tokens=8, resamples=100)
    methods = ["perk", "icl"]
    local = evaluate_records(PerkEngine.from_checkpoint(meta_checkpoint), records, methods, options)
    remote = evaluate_parallel(meta_checkpoint, records, methods, options, num_actors=2)
    assert _without_timing(remote.rows) == _without_timing(local.rows)
    assert [e["exact_match"] for e in remote.summary["overall"]] == [e["exact_match"] for e in local.summary["overall"]]
    assert remote.meta["num_actors"] == 2


def test_meta_trained_checkpoint_scores_above_the_unadapted_initialisation(meta_checkpoint, heldout_kv):
    records = heldout_kv(20, seed=2)
    engine = PerkEngine.from_checkpoint(meta_checkpoint)
    results = evaluate_records(engine, records, ["perk", "closed-book", "ttl"],
                               EvalOptions(max_new_tokens=8, resamples=200))
    perk = results.accuracy("perk")
    assert perk >= results.accuracy("closed-book") + 0.2 and perk >= results.accuracy("ttl") + 0.2, results.summary
    assert results.accuracy("perk", "babilong") >= perk


def test_babilong_columns_are_scored_with_the_named_task(meta_checkpoint, tmp_path):
    rows = [{"input": "Mary went to the kitchen. John moved to the garden.", "question": "Where is Mary?",
             "target": "kitchen"},
            {"input": "Daniel journeyed to the office. " * 20, "question": "Where is Daniel?", "target": "office"}]
    data = tmp_path / "qa1.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = load_records(data, task="babilong-qa1")
    results = evaluate_records(PerkEngine.from_checkpoint(meta_checkpoint), records, ["icl"],
                               EvalOptions(max_new_tokens=4, resamples=50))
    assert [r["task"] for r in results.rows] == ["babilong-qa1"] * 2
    assert [r["length"] for r in results.rows] == [64, 1024]  # no target_length: tokens rounded up to 2^k
    assert all(isinstance(r["babilong"], bool) for r in results.rows)
    assert [r["depth"] for r in results.rows] == [None, None] and results.summary["by_depth"] == []


def test_merged_evaluations_recompute_the_aggregates(tmp_path):
    from perk_ray.config import load_config
    from perk_ray.data import generate
    from perk_ray.engine import PerkEngine
    from perk_ray.evaluation import evaluate_records
    from perk_ray.evaluation.report import write_outputs
    from perk_ray.evaluation.runner import merge_results

    engine = PerkEngine.from_config(load_config("tiny", ["inner.steps=1", "inner.truncation=0"]))
    records = generate("kv-recall", count=2, target_tokens=None, seed=3, split="test")
    parts = []
    for i, methods in enumerate((["perk"], ["closed-book"])):
        results = evaluate_records(engine, records, methods)
        write_outputs(results, tmp_path / str(i))
        parts.append(tmp_path / str(i) / "results.json")
    merged = merge_results(parts)
    assert merged.meta["methods"] == ["perk", "closed-book"] and len(merged.rows) == 4
    assert {e["method"]: e["n"] for e in merged.summary["overall"]} == {"perk": 2, "closed-book": 2}
    assert len({r["index"] for r in merged.rows}) == 4  # each file's records stay apart
    assert (write_outputs(merged, tmp_path / "merged")[0]).exists()
