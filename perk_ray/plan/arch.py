"""Base-model architecture numbers for planning: an embedded table for offline use, HF ``config.json`` otherwise."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from perk_ray.config import LoraConfig, ModelConfig
from perk_ray.errors import ConfigError

Family = Literal["qwen2", "llama", "gpt2"]
BYTE_VOCAB = 258  # perk_ray.tokenizer: 256 bytes + end-of-text + padding


@dataclass(frozen=True)
class Architecture:
    """The shape of a decoder-only causal LM (what memory and FLOPs depend on)."""

    family: Family
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    vocab_size: int
    tie_embeddings: bool
    max_positions: int = 0  # learned position embeddings (GPT-2); 0 for rotary models

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linears(self) -> dict[str, tuple[int, int]]:
        """Every LoRA-able linear projection of one decoder layer: name -> (in features, out features)."""
        h, i, kv = self.hidden_size, self.intermediate_size, self.kv_dim
        if self.family == "gpt2":
            return {"c_attn": (h, 3 * h), "attn.c_proj": (h, h), "c_fc": (h, i), "mlp.c_proj": (i, h)}
        return {"q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def num_params(self) -> int:
        """Parameters of the base model (embeddings, decoder layers, final norm, untied LM head)."""
        h, v = self.hidden_size, self.vocab_size
        weights = sum(a * b for a, b in self.linears().values())
        if self.family == "gpt2":
            per_layer = weights + 3 * h + h + self.intermediate_size + h + 4 * h  # biases, two LayerNorms
            embed, final_norm = v * h + self.max_positions * h, 2 * h
        else:
            bias = h + 2 * self.kv_dim if self.family == "qwen2" else 0  # Qwen2: q, k, v biases
            per_layer, embed, final_norm = weights + bias + 2 * h, v * h, h
        return embed + self.num_layers * per_layer + final_norm + (0 if self.tie_embeddings else v * h)


def _qwen2(h: int, i: int, layers: int, heads: int, kv: int, vocab: int, tie: bool) -> Architecture:
    return Architecture("qwen2", h, i, layers, heads, kv, vocab, tie)


_QWEN_0_5B = _qwen2(896, 4864, 24, 14, 2, 151936, True)
_QWEN_1_5B = _qwen2(1536, 8960, 28, 12, 2, 151936, True)
_QWEN_7B = _qwen2(3584, 18944, 28, 28, 4, 152064, False)
_GPT2 = Architecture("gpt2", 768, 3072, 12, 12, 12, 50257, True, max_positions=1024)
_SMOLLM2_135M = Architecture("llama", 576, 1536, 30, 9, 3, 49152, True)

KNOWN: dict[str, Architecture] = {
    "Qwen/Qwen2.5-0.5B": _QWEN_0_5B, "Qwen/Qwen2.5-0.5B-Instruct": _QWEN_0_5B,
    "Qwen/Qwen2.5-1.5B": _QWEN_1_5B, "Qwen/Qwen2.5-1.5B-Instruct": _QWEN_1_5B,
    "Qwen/Qwen2.5-7B": _QWEN_7B, "Qwen/Qwen2.5-7B-Instruct": _QWEN_7B,
    "openai-community/gpt2": _GPT2, "gpt2": _GPT2,
    "smollm2-135m": _SMOLLM2_135M, "HuggingFaceTB/SmolLM2-135M": _SMOLLM2_135M,
    "HuggingFaceTB/SmolLM2-135M-Instruct": _SMOLLM2_135M,
}


def from_hf_config(config: dict, source: str) -> Architecture:
    """Architecture from a Hugging Face ``config.json`` dict (Qwen2, Llama-like or GPT-2)."""
    kind = config.get("model_type")
    try:
        if kind == "gpt2":
            h = config["n_embd"]
            return Architecture("gpt2", h, config.get("n_inner") or 4 * h, config["n_layer"], config["n_head"],
                                config["n_head"], config["vocab_size"], config.get("tie_word_embeddings", True),
                                max_positions=config["n_positions"])
        if kind in ("qwen2", "llama", "mistral"):
            heads = config["num_attention_heads"]
            return Architecture("qwen2" if kind == "qwen2" else "llama", config["hidden_size"],
                                config["intermediate_size"], config["num_hidden_layers"], heads,
                                config.get("num_key_value_heads") or heads, config["vocab_size"],
                                config.get("tie_word_embeddings", False))
    except KeyError as err:
        raise ConfigError(f"{source}: config.json lacks {err.args[0]!r}") from None
    raise ConfigError(f"{source}: model_type={kind!r} is not one the planner knows (qwen2, llama, mistral, gpt2)")


def _read_config_json(directory: Path, field: str) -> Architecture:
    path = directory / "config.json"
    if not path.is_file():
        raise ConfigError(f"{field}={str(directory)!r}: no config.json in that directory")
    return from_hf_config(json.loads(path.read_text()), f"{field}={str(directory)!r}")


def resolve_architecture(cfg: ModelConfig) -> Architecture:
    """The base model's architecture: ``tiny`` from ``model.tiny``, known names from the table, else config.json."""
    if cfg.name == "tiny":
        if cfg.pretrained_dir:
            return _read_config_json(Path(cfg.pretrained_dir), "model.pretrained_dir")
        t = cfg.tiny
        if t.hidden_size % t.num_heads or t.num_heads % t.num_kv_heads:
            raise ConfigError(f"model.tiny: hidden_size={t.hidden_size} must divide by num_heads={t.num_heads}, "
                              f"and num_heads by num_kv_heads={t.num_kv_heads}")
        return Architecture("qwen2", t.hidden_size, t.intermediate_size, t.num_layers, t.num_heads, t.num_kv_heads,
                            BYTE_VOCAB, True)
    if cfg.name in KNOWN:
        return KNOWN[cfg.name]
    if Path(cfg.name).is_dir():
        return _read_config_json(Path(cfg.name), "model.name")
    try:
        from transformers import AutoConfig

        return from_hf_config(AutoConfig.from_pretrained(cfg.name).to_dict(), f"model.name={cfg.name!r}")
    except (OSError, ValueError):
        raise ConfigError(
            f"model.name={cfg.name!r}: not in the planner's table ({', '.join(sorted(KNOWN))}), not a local model "
            "directory, and its config.json is not reachable"
        ) from None


def lora_targets(arch: Architecture, lora: LoraConfig) -> dict[str, tuple[int, int]]:
    """The linear projections of one layer that carry LoRA (peft suffix matching; None = every projection)."""
    linears = arch.linears()
    if lora.target_modules is None:
        return linears
    chosen = {name: shape for name, shape in linears.items()
              if any(name == t or name.endswith("." + t) for t in lora.target_modules)}
    if not chosen:
        raise ConfigError(
            f"lora.target_modules={lora.target_modules!r} matches no projection of this {arch.family} model "
            f"(choose from {sorted({n.split('.')[-1] for n in linears})})"
        )
    return chosen


def lora_params(arch: Architecture, lora: LoraConfig) -> int:
    """Parameters of the LoRA memory: rank x (in + out) per targeted projection per layer."""
    return arch.num_layers * sum(lora.rank * (a + b) for a, b in lora_targets(arch, lora).values())
