"""Exported memories name a base that Hugging Face tools resolve; meta-checkpoints carry a model card."""

from __future__ import annotations

import json

import torch
from peft import AutoPeftModelForCausalLM

from perk_ray.checkpoint import save_meta_checkpoint
from perk_ray.config import load_config
from perk_ray.engine import PerkEngine
from perk_ray.model import SMOLLM2_HUB_ID, load_tokenizer, lora_forward, resolvable_base
from perk_ray.pretrain import pretrain_tiny_base

CONTEXT = "The code of lemon is seven. The code of apple is three. The code of pear is one."


def test_presets_name_resolvable_bases(tmp_path):
    assert resolvable_base(load_config("smollm2-135m").model) == SMOLLM2_HUB_ID
    assert resolvable_base(load_config("qwen2.5-7b").model) == "Qwen/Qwen2.5-7B"
    assert resolvable_base(load_config("tiny").model) == "tiny"  # random, built by perk-ray: nothing to resolve
    assert resolvable_base(load_config("tiny", [f"model.pretrained_dir={tmp_path}"]).model) == str(tmp_path)


def test_exported_memory_loads_with_auto_peft_and_gives_the_same_logits(tmp_path):
    cfg = load_config("tiny", ["inner.chunk_tokens=32"])
    base_dir = pretrain_tiny_base(cfg.model, [CONTEXT] * 8, tmp_path / "base", steps=1, batch_size=2, seq_len=32,
                                  log=lambda _: None)
    engine = PerkEngine.from_config(load_config("tiny", ["inner.chunk_tokens=32", f"model.pretrained_dir={base_dir}"]))
    memory = engine.encode(CONTEXT)
    folder = engine.export(memory, tmp_path / "memory")
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base_dir.resolve())
    model = AutoPeftModelForCausalLM.from_pretrained(str(folder)).eval()  # one call, as a user of peft would
    ids = torch.tensor([load_tokenizer("tiny").encode("What is the code of apple?")])
    with torch.no_grad():
        theirs = model(input_ids=ids).logits
    torch.testing.assert_close(theirs, lora_forward(engine.base, memory.params, ids).logits, rtol=1e-5, atol=1e-5)


def test_meta_checkpoint_carries_a_model_card(tmp_path):
    engine = PerkEngine.from_config(load_config("tiny", ["inner.steps=3", "inner.truncation=2"]))
    path = save_meta_checkpoint(tmp_path / "ckpt", engine.base, engine.meta, engine.cfg,
                                {"step": 40, "dev_accuracy": 0.375})
    card = (path / "README.md").read_text()
    data = engine.cfg.data
    for fact in ("library_name: peft", f"# PERK meta-checkpoint: tiny on {data.task}", f"| task | {data.task} |",
                 f"| context lengths (tokens) | {', '.join(map(str, data.lengths))} |",
                 "| inner steps K / truncation T | 3 / 2 |", f"| LoRA rank | {engine.cfg.lora.rank} |",
                 "| meta-steps | 40 |", "| dev accuracy (exact match) | 0.375 |", "PerkEngine.from_checkpoint",
                 "a random ~100k-parameter Qwen2", "arxiv.org/abs/2507.06415"):
        assert fact in card, fact
