"""Learning happens: PERK memories answer key-value questions whose facts are only in the context."""

from __future__ import annotations

import pytest
import torch

from perk_ray.chunking import chunk_context
from perk_ray.engine import PerkEngine
from perk_ray.evaluation.metrics import exact_match
from tests.conftest import kv_records


def _accuracy(engine: PerkEngine, records: list[dict], encode: bool) -> float:
    correct = 0
    for record in records:
        if encode:
            memory = engine.encode(record["context"])
        else:  # same prompt (document count), un-adapted initialisation
            memory = engine.initial_memory()
            memory.num_chunks = chunk_context(engine.base.tokenizer, record["context"], engine.cfg.inner).num_chunks
        correct += exact_match(engine.answer(memory, [record["question"]], max_new_tokens=8)[0], record["answer"])
    return correct / len(records)


@pytest.mark.parametrize("checkpoint", ["kv_checkpoint",
                                        pytest.param("kv_checkpoint_bf16", marks=pytest.mark.slow)])
def test_perk_memories_beat_chance_and_the_unadapted_initialisation(checkpoint, request):
    engine = PerkEngine.from_checkpoint(request.getfixturevalue(checkpoint))
    test = kv_records(60, 99, "test")
    perk, unadapted = _accuracy(engine, test, encode=True), _accuracy(engine, test, encode=False)
    chance = 0.1
    print(f"kv-recall (2 facts): PERK {perk:.2f}, un-adapted init {unadapted:.2f}, chance {chance:.2f}")
    assert perk >= chance + 0.2
    assert perk >= unadapted + 0.2


@pytest.mark.slow  # a second 150-step meta-training of the tiny model
def test_bf16_base_keeps_lora_meta_parameters_and_losses_in_fp32(kv_checkpoint_bf16):
    engine = PerkEngine.from_checkpoint(kv_checkpoint_bf16)
    assert engine.base.model.get_base_model().model.embed_tokens.weight.dtype == torch.bfloat16
    assert {p.dtype for p in engine.meta.parameters()} == {torch.float32}
    memory = engine.encode(kv_records(1, 7, "test")[0]["context"])
    assert {t.dtype for t in memory.params.values()} == {torch.float32}
    assert all(isinstance(loss, float) for loss in memory.inner_losses)
