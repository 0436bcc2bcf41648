"""Run the methods over records in this process: one row per (record, method), scored, then aggregated."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from perk_ray.config import PerkConfig
from perk_ray.data.schema import TaskRecord
from perk_ray.engine import PerkEngine
from perk_ray.errors import InputError
from perk_ray.evaluation.aggregate import summarize
from perk_ray.evaluation.journal import RowJournal, record_keys
from perk_ray.evaluation.methods import Method, Outcome, build_methods, model_window
from perk_ray.evaluation.metrics import babilong_match, exact_match
from perk_ray.evaluation.prompts import Overflow, Template
from perk_ray.evaluation.records import fact_depth, length_bucket, task_labels

Row = dict[str, Any]
log = logging.getLogger(__name__)
MIB = 2**20


@dataclass
class EvalOptions:
    """Evaluation settings that are not part of the model's config (defaults from the checkpoint's config)."""

    max_new_tokens: int | None = None  # default: outer.max_new_tokens
    window: int | None = None  # the prompt-based methods' context window; default: the model's
    overflow: Overflow = "truncate"  # prompt-based methods on a context over the window: truncate | skip
    icl_template: Template = "plain"  # icl's prompt: plain, or the tokenizer's chat template (instruct models)
    ttl_template: Template = "plain"  # ttl's question prompt: PERK's plain one, or the chat template
    icl_ft_checkpoint: str | None = None
    depth_bins: int = 5
    seed: int = 0  # bootstrap seed
    resamples: int = 1000

    def validate(self) -> None:
        """Refuse settings that cannot work (the window is only known once the model is loaded)."""
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens={self.max_new_tokens} must be >= 1")
        if self.window is not None and self.max_new_tokens is not None and self.window <= self.max_new_tokens:
            raise InputError(f"window {self.window} must exceed max_new_tokens {self.max_new_tokens}")
        if self.depth_bins < 1 or self.resamples < 1:
            raise InputError(f"depth_bins={self.depth_bins} and resamples={self.resamples} must be >= 1")

    def resolved(self, engine: PerkEngine) -> EvalOptions:
        """A validated copy with the defaults filled in from the engine."""
        opts = EvalOptions(**asdict(self))
        if opts.max_new_tokens is None:
            opts.max_new_tokens = engine.cfg.outer.max_new_tokens
        if opts.window is None:
            opts.window = model_window(engine.base)
        opts.validate()
        return opts


@dataclass
class EvalResults:
    """Per-example rows, their aggregates and the run's settings."""

    rows: list[Row]
    summary: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)

    def accuracy(self, method: str = "perk", metric: str = "exact_match") -> float:
        """Overall mean of ``metric`` (exact_match or babilong) for ``method``."""
        for entry in self.summary["overall"]:
            if entry["method"] == method and entry[metric] is not None:
                return entry[metric]["mean"]
        raise KeyError(f"no {metric} for method {method!r} in these results")

    def to_dict(self) -> dict[str, Any]:
        return {"meta": self.meta, "summary": self.summary, "examples": self.rows}


def make_runners(engine: PerkEngine, methods: Sequence[str], opts: EvalOptions) -> list[Method]:
    return build_methods(engine, list(methods), max_new_tokens=opts.max_new_tokens, window=opts.window,
                         overflow=opts.overflow, icl_ft_checkpoint=opts.icl_ft_checkpoint,
                         icl_template=opts.icl_template, ttl_template=opts.ttl_template)


def score_row(index: int, record: TaskRecord, context_tokens: int, method: str, outcome: Outcome) -> Row:
    """One scored result: the record's keys, the prediction, both scores and the measured costs."""
    return {
        "index": index, "id": record.id, "task": record.task, "method": method,
        "length": length_bucket(record, context_tokens), "depth": fact_depth(record),
        "context_tokens": context_tokens, "question": record.question,
        "answers": list(record.answer), "prediction": outcome.prediction, "generation": outcome.generation,
        "exact_match": exact_match(outcome.prediction, record.answer),
        "babilong": babilong_match(outcome.prediction, record.answer, task_labels(record.task), record.question),
        "status": outcome.status, "prompt_tokens": outcome.prompt_tokens, "dropped_tokens": outcome.dropped_tokens,
        "encode_s": outcome.encode_s, "answer_s": outcome.answer_s,
        "encode_peak_mib": None if outcome.encode_peak_bytes is None else outcome.encode_peak_bytes / MIB,
        "answer_peak_mib": None if outcome.answer_peak_bytes is None else outcome.answer_peak_bytes / MIB,
        "note": outcome.note, "inner_losses": outcome.inner_losses,
    }


def run_record(engine: PerkEngine, runners: Sequence[Method], index: int, record: TaskRecord) -> list[Row]:
    """Every method on one record."""
    tokens = len(engine.base.tokenizer.encode(record.joined_context(), add_special_tokens=False))
    return [score_row(index, record, tokens, m.name, m.run(record)) for m in runners]


def build_results(cfg: PerkConfig, device: str, rows: list[Row], methods: Sequence[str], opts: EvalOptions,
                  meta: dict[str, Any] | None = None) -> EvalResults:
    """Aggregate rows (ordered by record, then method) into results with the run's settings."""
    order = {name: i for i, name in enumerate(methods)}
    rows = sorted(rows, key=lambda r: (r["index"], order[r["method"]]))
    train_lengths = sorted(cfg.data.lengths)
    summary = summarize(rows, list(methods), train_lengths=train_lengths, depth_bins=opts.depth_bins,
                        seed=opts.seed, resamples=opts.resamples)
    settings = {"methods": list(methods), "num_examples": len({r["index"] for r in rows}),
                "train_lengths": train_lengths, "base_model": cfg.model.name, "device": device, **asdict(opts),
                **(meta or {})}
    return EvalResults(rows, summary, settings)


def journal_header(opts: EvalOptions, methods: Sequence[str], meta: dict[str, Any]) -> dict[str, Any]:
    """What makes two evaluations' rows interchangeable: methods, checkpoint, data, overrides and generation settings
    (not the bootstrap's seed and resamples, which only the aggregates use)."""
    settings = {k: v for k, v in asdict(opts).items() if k not in ("seed", "resamples", "depth_bins")}
    return {"methods": list(methods), **settings, **{k: meta.get(k) for k in ("checkpoint", "data", "overrides")}}


def evaluate_records(engine: PerkEngine, records: Sequence[TaskRecord], methods: Sequence[str] = ("perk",),
                     options: EvalOptions | None = None, *, progress: bool = False,
                     journal: Path | None = None, meta: dict[str, Any] | None = None) -> EvalResults:
    """Evaluate ``methods`` on ``records`` in this process (e.g. dev accuracy during training:
    ``evaluate_records(engine, dev, ["perk"]).accuracy("perk")``). With ``journal`` (a file), each record's rows
    are appended there as they finish and records already there are not run again: a killed evaluation resumes."""
    if not records:
        raise InputError("no records to evaluate")
    opts = (options or EvalOptions()).resolved(engine)
    meta = meta or {}
    book = RowJournal(journal, journal_header(opts, methods, meta)) if journal is not None else None
    keys = record_keys(records)
    if book is not None and book.done:
        reused = sum(key in book.done for key in keys)
        log.info("resuming from %s: %d of %d records already evaluated", journal, reused, len(records))
    runners = make_runners(engine, methods, opts)
    rows: list[Row] = []
    for index, record in enumerate(tqdm(records, desc="evaluating", unit="example", disable=not progress)):
        if book is not None and keys[index] in book.done:
            rows.extend({**row, "index": index} for row in book.done[keys[index]])
            continue
        record_rows = run_record(engine, runners, index, record)
        if book is not None:
            book.append(keys[index], record_rows)
        rows.extend(record_rows)
    return build_results(engine.cfg, str(engine.base.device), rows, methods, opts, meta)


def merge_results(files: Sequence[Path]) -> EvalResults:
    """One report from several evaluations of one checkpoint (e.g. per method or length, run separately): rows are
    renumbered per file so that records stay apart, and the aggregates are recomputed over all of them."""
    payloads = [json.loads(Path(f).read_text()) for f in files]
    if not payloads:
        raise InputError("give at least one results.json to merge")
    methods: list[str] = []
    rows: list[Row] = []
    offset = 0
    for payload in payloads:
        methods += [m for m in payload["meta"]["methods"] if m not in methods]
        rows += [{**row, "index": row["index"] + offset} for row in payload["examples"]]
        offset += 1 + max((row["index"] for row in payload["examples"]), default=-1)
    meta = payload["meta"]
    order = {name: i for i, name in enumerate(methods)}
    rows.sort(key=lambda r: (r["index"], order[r["method"]]))
    summary = summarize(rows, methods, train_lengths=meta["train_lengths"], depth_bins=meta["depth_bins"],
                        seed=meta["seed"], resamples=meta["resamples"])
    merged = {**meta, "methods": methods, "num_examples": len({r["index"] for r in rows}),
              "merged_from": [str(f) for f in files]}
    return EvalResults(rows, summary, merged)
