"""Inference API, exported memories, atomic meta-checkpoints and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel

from perk_ray.checkpoint import atomic_directory, load_train_state, save_meta_checkpoint
from perk_ray.config import load_config
from perk_ray.engine import PerkEngine
from perk_ray.errors import CheckpointError, ConfigError, InputError
from perk_ray.model import _load_causal_lm, load_tokenizer, lora_forward
from perk_ray.train.loop import MetaTrainer
from tests.conftest import kv_records

CONTEXT = "The code of lemon is seven. The code of apple is three. The code of pear is one."


@pytest.fixture(scope="module")
def engine() -> PerkEngine:
    return PerkEngine.from_config(load_config("tiny", ["inner.chunk_tokens=32"]))


def test_encode_adapts_the_memory_and_lowers_the_inner_loss(engine):
    memory = engine.encode(CONTEXT)
    assert memory.num_chunks == 3 and memory.num_tokens == len(CONTEXT) + 1  # and the space after "doc_i:"
    assert memory.inner_losses[-1] < memory.inner_losses[0]
    init = engine.initial_memory().params
    assert any(not torch.equal(memory.params[n], init[n]) for n in init)
    # the context loss before encoding is the first inner step's loss; after encoding it is lower than the last
    assert engine.context_loss(CONTEXT, engine.initial_memory()) == pytest.approx(memory.inner_losses[0], rel=1e-5)
    assert engine.context_loss(CONTEXT, memory) < memory.inner_losses[-1]


def test_answers_are_deterministic_and_batched(engine):
    memory = engine.encode(CONTEXT)
    questions = ["What is the code of apple?", "What is the code of pear?"]
    batched = engine.answer(memory, questions, max_new_tokens=8)
    single = [engine.answer(memory, [q], max_new_tokens=8)[0] for q in questions]
    assert batched == single and len(batched) == 2


def test_exported_memory_loads_in_peft_with_the_same_logits(engine, tmp_path):
    memory = engine.encode(CONTEXT)
    folder = engine.export(memory, tmp_path / "memory")
    assert {p.name for p in folder.iterdir()} == {"adapter_config.json", "adapter_model.safetensors"}
    fresh_base = _load_causal_lm(engine.cfg.model, len(load_tokenizer("tiny")))
    peft_model = PeftModel.from_pretrained(fresh_base, str(folder)).eval()
    ids = torch.tensor([load_tokenizer("tiny").encode("What is the code of apple?")])
    ours = lora_forward(engine.base, memory.params, ids).logits
    with torch.no_grad():
        theirs = peft_model(input_ids=ids).logits
    torch.testing.assert_close(theirs, ours, rtol=1e-5, atol=1e-5)
    with peft_model.disable_adapter(), torch.no_grad():
        assert not torch.allclose(peft_model(input_ids=ids).logits, ours, atol=1e-4)  # the adapter really acts


def test_meta_checkpoint_round_trip_is_exact(engine, tmp_path):
    with torch.no_grad():
        for p in engine.meta.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_meta_checkpoint(tmp_path / "ckpt", engine.base, engine.meta, engine.cfg, {"step": 7})
    loaded = PerkEngine.from_checkpoint(path)
    for (name, a), (_, b) in zip(engine.meta.state_dict().items(), loaded.meta.state_dict().items()):
        assert torch.equal(a, b), name
    assert not list(tmp_path.glob(".ckpt.tmp-*"))
    a, b = engine.encode(CONTEXT), loaded.encode(CONTEXT)
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params)


def test_train_state_loads_without_unpickling_code(tmp_path):
    cfg = load_config("tiny", ["train.max_steps=1", "outer.batch_size=1"])
    trainer = MetaTrainer(cfg, kv_records(2, 0, "train"), [])
    trainer.run_step()
    path = trainer.save(tmp_path / "ckpt", {})
    resumed = MetaTrainer(cfg, kv_records(2, 0, "train"), [])
    resumed.restore(path)  # load_train_state: torch.load(weights_only=True)
    assert resumed.step == 1
    assert resumed.optimizer.state_dict()["param_groups"] == trainer.optimizer.state_dict()["param_groups"]
    torch.save({"step": 1, "payload": Path("x")}, path / "train_state.pt")  # an arbitrary object: refused
    with pytest.raises(Exception, match="weights_only"):
        load_train_state(path)


def test_atomic_directory_keeps_the_old_checkpoint_when_writing_fails(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as tmp:
            (tmp / "a.txt").write_text("half-written")
            raise RuntimeError("killed mid-write")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_checkpoint_of_another_base_model_is_refused(engine, tmp_path):
    path = save_meta_checkpoint(tmp_path / "ckpt", engine.base, engine.meta, engine.cfg)
    other = PerkEngine.from_config(load_config("tiny", ["model.tiny.seed=1", "model.tiny.hidden_size=32"]))
    from perk_ray.checkpoint import load_meta_params
    with pytest.raises(CheckpointError, match="meta-trained on base"):
        load_meta_params(path, other.base, other.meta)


def test_missing_or_incomplete_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        PerkEngine.from_checkpoint(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    with pytest.raises(CheckpointError, match="incomplete"):
        PerkEngine.from_checkpoint(tmp_path / "half")


@pytest.mark.parametrize("context", ["", "   ", [], ["", " "]])
def test_empty_context_is_refused(engine, context):
    with pytest.raises(InputError, match="context is empty"):
        engine.encode(context)


def test_context_over_the_limit_is_refused():
    engine = PerkEngine.from_config(load_config("tiny", ["inner.max_context_tokens=50"]))
    with pytest.raises(InputError, match=r"81 tokens, over the limit inner.max_context_tokens=50"):
        engine.encode(CONTEXT)


def test_blank_questions_are_refused(engine):
    memory = engine.encode(CONTEXT)
    with pytest.raises(InputError, match="questions"):
        engine.answer(memory, [])


def test_config_errors_name_field_value_and_limit():
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'.*tiny"):
        load_config("nope")
    with pytest.raises(ConfigError, match=r"`inner.steps`.*greater than or equal to 1.*got 0"):
        load_config("tiny", ["inner.steps=0"])
    with pytest.raises(ConfigError, match=r"`inner.optimizer`.*'sgd' or 'adamw'.*got 'lamb'"):
        load_config("tiny", ["inner.optimizer=lamb"])
    with pytest.raises(ConfigError, match=r"`lora.rnak`: unknown field"):
        load_config("tiny", ["lora.rnak=4"])
    with pytest.raises(ConfigError, match=r"inner.truncation=5 must be <= inner.steps=4"):
        load_config("tiny", ["inner.truncation=5"])
    with pytest.raises(ConfigError, match="expected section.field=value"):
        load_config("tiny", ["inner.steps"])


def test_every_preset_loads_and_overrides_apply():
    from perk_ray.config import available_presets
    assert {"tiny", "smollm2-135m", "qwen2.5-0.5b", "qwen2.5-7b", "gpt2"} <= set(available_presets())
    for name in available_presets():
        cfg = load_config(name, ["inner.steps=3", "inner.truncation=1", "lora.target_modules=[q_proj, v_proj]"])
        assert cfg.inner.steps == 3 and cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert load_config("qwen2.5-7b").lora.rank == 256


def test_missing_model_directory_is_a_clear_error(tmp_path):
    cfg = load_config("tiny", [f"model.name={tmp_path}/no-such-model"])
    with pytest.raises(ConfigError, match="model.name=.*no-such-model.*not a preset"):
        PerkEngine.from_config(cfg)
