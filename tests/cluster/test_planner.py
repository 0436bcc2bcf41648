"""The memory and time planner: architecture numbers, LoRA sizes, FLOPs, recommendations and input errors."""

from __future__ import annotations

import huggingface_hub.constants
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, Qwen2Config

from perk_ray.config import load_config
from perk_ray.errors import ConfigError
from perk_ray.meta import MetaParams, prepare_task, task_loss
from perk_ray.model import load_base_model
from perk_ray.plan import KNOWN, estimate_memory, lora_params, resolve_architecture
from perk_ray.plan.__main__ import main, parse
from perk_ray.plan.compute import step_compute
from perk_ray.plan.gpus import GPUS, evaluate, get_gpu, recommend
from perk_ray.plan.report import plan_report

SMALL = ["model.tiny.hidden_size=64", "model.tiny.intermediate_size=256", "inner.chunk_tokens=64",
         "inner.micro_batch_chunks=4", "data.lengths=[256]", "outer.batch_size=1"]


def _hf_config(name: str):
    a = KNOWN[name]
    if a.family == "gpt2":
        return GPT2Config(n_embd=a.hidden_size, n_layer=a.num_layers, n_head=a.num_heads, vocab_size=a.vocab_size,
                          n_positions=a.max_positions)
    cls = Qwen2Config if a.family == "qwen2" else LlamaConfig
    return cls(hidden_size=a.hidden_size, intermediate_size=a.intermediate_size, num_hidden_layers=a.num_layers,
               num_attention_heads=a.num_heads, num_key_value_heads=a.num_kv_heads, vocab_size=a.vocab_size,
               tie_word_embeddings=a.tie_embeddings)


@pytest.mark.parametrize("name, published", [("Qwen/Qwen2.5-0.5B", 494_032_768), ("Qwen/Qwen2.5-1.5B", 1_543_714_304),
                                             ("Qwen/Qwen2.5-7B", 7_615_616_512), ("gpt2", 124_439_808),
                                             ("smollm2-135m", 134_515_008)])
def test_embedded_architectures_build_the_published_models(name, published):
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(_hf_config(name))
    assert KNOWN[name].num_params() == sum(p.numel() for p in model.parameters()) == published


@pytest.mark.parametrize("overrides", [[], ["lora.rank=32", "lora.target_modules=[q_proj,down_proj]"],
                                       ["model.tiny.num_layers=3", "model.tiny.num_kv_heads=4"]])
def test_tiny_parameter_and_lora_counts_match_the_loaded_model(overrides):
    cfg = load_config("tiny", overrides)
    base = load_base_model(cfg.model, cfg.lora)
    named = dict(base.model.named_parameters())
    lora = sum(named[n].numel() for n in base.lora_names)
    arch = resolve_architecture(cfg.model)
    assert lora_params(arch, cfg.lora) == lora
    assert arch.num_params() == sum(p.numel() for p in base.model.parameters()) - lora


def test_local_config_json_is_read(tmp_path):
    (tmp_path / "config.json").write_text(_hf_config("Qwen/Qwen2.5-7B").to_json_string())
    cfg = load_config("tiny", [f"model.pretrained_dir={tmp_path}"])
    assert resolve_architecture(cfg.model) == KNOWN["Qwen/Qwen2.5-7B"]


@pytest.mark.parametrize("overrides", [["inner.steps=2", "inner.truncation=1"],
                                       ["inner.steps=4", "inner.truncation=0", "lora.rank=32"],
                                       ["inner.steps=2", "inner.truncation=1", "inner.weighting=none"]])
def test_flops_match_torch_flop_counter(overrides):
    cfg = load_config("tiny", [*SMALL, *overrides])
    base = load_base_model(cfg.model, cfg.lora)
    base.model.eval()
    meta = MetaParams.from_base(base, cfg)
    task = prepare_task(base.tokenizer, cfg, ("The code of lemon is seven. " * 40)[:256], ["What?"], ["seven"])
    with FlopCounterMode(display=False) as counter:
        task_loss(base, meta, task, cfg).loss.backward()
    planned = step_compute(cfg, resolve_architecture(cfg.model)).flops
    assert planned == pytest.approx(counter.get_total_flops(), rel=0.05)


def test_memory_grows_with_truncation_not_steps_and_shrinks_with_context_parallelism():
    def total(*overrides):
        cfg = load_config("qwen2.5-0.5b", list(overrides))
        return estimate_memory(cfg, resolve_architecture(cfg.model))

    t1, t2 = total("inner.truncation=1"), total("inner.truncation=2")
    assert t2.kept_activations == pytest.approx(2 * t1.kept_activations)
    k8 = total("inner.truncation=1", "inner.steps=8")
    preset = load_config("qwen2.5-0.5b")
    lora_bytes = 4 * lora_params(resolve_architecture(preset.model), preset.lora)
    assert k8.total - t1.total == pytest.approx(4 * lora_bytes, rel=0.01)  # one saved update per first-order step
    cp = total("train.strategy=cp", "train.num_workers=4")
    assert cp.kept_activations == pytest.approx(t2.kept_activations / 4)
    assert total("train.strategy=fsdp", "train.num_workers=2").weights > total("train.strategy=ddp").weights


def test_recommendations_for_the_paper_presets():
    small = load_config("qwen2.5-0.5b")
    option = evaluate(small, resolve_architecture(small.model), get_gpu("H100-80GB"))
    assert option.fits and not evaluate(small, resolve_architecture(small.model), get_gpu("L4-24GB")).fits
    large = load_config("qwen2.5-7b")
    arch = resolve_architecture(large.model)
    fsdp = load_config("qwen2.5-7b", ["train.strategy=fsdp", "train.num_workers=8"])
    assert not any(evaluate(fsdp, arch, gpu).fits for gpu in GPUS.values())  # fsdp gathers the full weights
    assert large.train.strategy == "cp" and evaluate(large, arch, get_gpu("H200-141GB")).fits
    best = recommend(large, arch)
    assert best.strategy == "cp" and best.gpu.name == "H200-141GB"
    assert "switch to train.strategy=cp" in plan_report(fsdp) and "| total |" in plan_report(large)


def test_cli_prints_the_table(capsys):
    assert main(["--preset", "qwen2.5-0.5b", "--gpu", "H100-80GB"]) == 0
    out = capsys.readouterr().out
    assert "| kept-step activations |" in out and "Recommendation:" in out and "H100-80GB" in out


@pytest.mark.parametrize("argv, words", [
    (["inner.truncation=5"], ["inner.truncation=5", "inner.steps=4"]),
    (["inner.chunk_tokens=-8"], ["inner.chunk_tokens", "-8"]),
    (["lora.rank=-1"], ["lora.rank"]),
    (["data.lengths=[-100]"], ["data.lengths"]),
    (["model.tiny.hidden_size=100", "model.tiny.num_heads=3"], ["model.tiny", "num_heads=3"]),
    (["lora.target_modules=[c_attn]"], ["lora.target_modules", "q_proj"]),
    (["--gpu", "V100"], ["gpu='V100'", "H100-80GB"]),
    (["--headroom", "1.5"], ["headroom=1.5"]),
])
def test_input_errors_name_the_field(argv, words, capsys):
    with pytest.raises(ConfigError) as err:
        inputs = parse(argv)
        plan_report(inputs.cfg, inputs.headroom, inputs.gpu)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert main(argv) == 2 and "error:" in capsys.readouterr().err


def test_unknown_model_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network retries
    with pytest.raises(ConfigError, match="model.name='nobody/no-model'"):
        resolve_architecture(load_config("tiny", ["model.name=nobody/no-model"]).model)
