"""Session fixtures: a tiny base that can express answers, a PERK checkpoint meta-trained on key-value recall for
a bounded number of steps, an icl-ft checkpoint, generated test data and helpers to run the jobs in-process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from perk_ray.checkpoint import save_meta_checkpoint
from perk_ray.config import PerkConfig, load_config
from perk_ray.data import generate, write_parquet
from perk_ray.engine import PerkEngine
from perk_ray.evaluation.baseline_checkpoint import save_baseline
from perk_ray.evaluation.icl_ft import train_icl_ft
from perk_ray.meta import build_outer_optimizer, meta_step, prepare_task
from perk_ray.model import _load_causal_lm, load_tokenizer

META_STEPS = 100  # about 25 s on one busy core
EMBEDDING_SCALE = 4.0
KV = {"num_pairs": 1}  # one fact per context, no haystack: about 28 tokens, the length bucket 32
TRAIN_LENGTH = 32


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Tiny tensors on 2 shared cores: two OpenMP threads make the meta-step about 20x slower than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def kv_config(tmp_path_factory) -> PerkConfig:
    """The tiny preset on a base whose tied embeddings are scaled up: the random init (std 0.02, hidden 64) bounds
    the logits to about +-1.3, so no answer can be made likely; std 0.08 lets meta-training learn in seconds."""
    directory = tmp_path_factory.mktemp("tiny-base")
    model = _load_causal_lm(load_config("tiny").model, len(load_tokenizer("tiny")))
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(EMBEDDING_SCALE)
    model.save_pretrained(directory)
    return load_config("tiny", [f"model.pretrained_dir={directory}", "data.task=kv-recall",
                                f"data.lengths=[{TRAIN_LENGTH}]"])


@pytest.fixture(scope="session")
def train_records(kv_config):
    return generate("kv-recall", count=META_STEPS * kv_config.outer.batch_size, target_tokens=None, seed=0, **KV)


@pytest.fixture(scope="session")
def meta_checkpoint(tmp_path_factory, kv_config, train_records) -> Path:
    """PERK meta-trained in-process for META_STEPS steps (one pass over the training records)."""
    start = time.perf_counter()
    torch.manual_seed(0)
    cfg = kv_config
    engine = PerkEngine.from_config(cfg)
    optimizer, scheduler = build_outer_optimizer(engine.meta, cfg, META_STEPS)
    generator = torch.Generator().manual_seed(0)
    size = cfg.outer.batch_size
    with single_thread():
        for step in range(META_STEPS):
            batch = train_records[step * size:(step + 1) * size]
            tasks = [prepare_task(engine.base.tokenizer, cfg, r.context, [r.question], [r.answer[0]], [r.support],
                                  generator=generator) for r in batch]
            meta_step(engine.base, engine.meta, tasks, cfg, optimizer, scheduler)
    path = save_meta_checkpoint(tmp_path_factory.mktemp("perk") / "checkpoint", engine.base, engine.meta, cfg,
                                {"step": META_STEPS, "seconds": time.perf_counter() - start})
    return path


@pytest.fixture(scope="session")
def icl_ft_checkpoint(tmp_path_factory, kv_config, train_records) -> Path:
    """The icl-ft baseline fine-tuned in-process (torch engine) for a few steps."""
    cfg = load_config("tiny", [f"model.pretrained_dir={kv_config.model.pretrained_dir}", "train.max_steps=3"])
    with single_thread():
        result = train_icl_ft(cfg, train_records[:12], engine="torch", log=lambda _: None)
    return save_baseline(tmp_path_factory.mktemp("icl-ft") / "checkpoint", result.base, result.params, cfg,
                         result.info)


@pytest.fixture(scope="session")
def test_data(tmp_path_factory) -> Path:
    """Held-out key-value records as in training and hidden in 64 tokens of prose (longer than trained on)."""
    records = generate("kv-recall", count=3, target_tokens=None, seed=1, split="test", **KV)
    records += generate("kv-recall", count=3, target_tokens=2 * TRAIN_LENGTH, seed=1, split="test", **KV)
    return write_parquet(records, tmp_path_factory.mktemp("data") / "test.parquet")


@pytest.fixture(scope="session")
def heldout_kv():
    """Held-out key-value records drawn like the training records: ``heldout_kv(count, seed)``."""
    return lambda count, seed: generate("kv-recall", count=count, target_tokens=None, seed=seed, split="test", **KV)
