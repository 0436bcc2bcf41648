"""One typed configuration for every perk-ray entry point (jobs, Tune, Serve).

Sections mirror the method: model, lora, inner (test-time encoding), outer (meta-training), data, train
(distribution and checkpoints) and serve. Presets are YAML files in ``perk_ray/presets``; any field can be
overridden with a dotted ``section.field=value`` string. Every error names the field, the value and the limit.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from perk_ray.errors import ConfigError

PRESET_DIR = Path(__file__).parent / "presets"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TinyModelConfig(_Section):
    """Shape of the randomly initialised Qwen2 model behind the ``tiny`` preset (no download)."""

    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(4, ge=1)
    num_kv_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(128, ge=8)
    max_position_embeddings: int = Field(2048, ge=64)
    seed: int = 0


class ModelConfig(_Section):
    """The frozen base model: a preset name (``tiny``, ``smollm2-135m``), a Hugging Face id or a local directory."""

    name: str = "tiny"
    dtype: Literal["float32", "float64", "bfloat16", "float16"] = "float32"
    attn_implementation: Literal["eager", "sdpa"] = Field(
        "eager", description="Attention kernels. sdpa: encoding and serving use PyTorch's fastest kernel; meta-steps "
        "run on its math kernel (the flash and memory-efficient ones have no double backward).")
    tiny: TinyModelConfig = TinyModelConfig()
    pretrained_dir: str | None = Field(
        None, description="Directory with a (briefly) pre-trained tiny base; used instead of random init."
    )


class LoraConfig(_Section):
    """The LoRA memory (peft): rank, scaling and which linear layers carry it."""

    rank: int = Field(8, ge=1, le=4096)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    use_rslora: bool = True
    target_modules: list[str] | None = Field(
        None, description="Module names; None picks every linear projection of the architecture."
    )


class InnerConfig(_Section):
    """The inner loop: K steps of causal-LM training of the LoRA memory on the context chunks."""

    steps: int = Field(4, ge=1, le=64)
    truncation: int = Field(2, ge=0, description="T: the last T inner steps keep their graph; earlier are first-order.")
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(5e-5, gt=0)
    learn_lrs: bool = True
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0, description="AdamW's update m_hat / (sqrt(v_hat) + eps), as the official code.")
    weight_decay: float = Field(0.01, ge=0, description="Decoupled (AdamW) weight decay of the inner steps (official).")
    grad_clip: float | None = Field(None, gt=0,
                                    description="Inner global-norm clipping; None (official) clips nothing.")
    chunk_tokens: int = Field(128, ge=4)
    pack_segments: bool = Field(
        False, description="Join a context's segments in order before cutting it into chunk_tokens chunks (the "
        "spec's fixed-length chunks: text order survives within a chunk); False cuts each segment (document) alone.")
    micro_batch_chunks: int = Field(4, ge=1, description="Chunks per micro-batch (gradient accumulation).")
    encode_micro_batch_chunks: int = Field(
        16, ge=1, description="Chunks per micro-batch when encoding at inference: no graph is kept across "
        "micro-batches, so bigger is faster (1.6x at 16 vs 4 on CPU) for one micro-batch's activations.")
    doc_ids: Literal["shuffled", "increasing", "in_order"] = Field(
        "shuffled", description="How meta-training numbers a context's chunks `doc_{i}:`. 'shuffled' (official): a "
        "random permutation, so the encoding cannot rely on chunk order; 'increasing': random ids below "
        "inner.doc_id_range in the chunks' order, so order is kept but no id marks a position; 'in_order': 0, 1, 2, "
        "... Inference always numbers 0, 1, 2, ...")
    doc_id_range: int = Field(64, ge=1, description="'increasing' draws a context's ids from 0 .. max(this, chunks) "
                              "- 1: at least the chunk count of the longest context to answer, so that inference's ids "
                              "are seen in training.")
    max_context_tokens: int = Field(32768, ge=1)
    weighting: Literal["mlp", "none"] = "mlp"
    weighting_hidden: int = Field(128, ge=1)
    weighting_activation: Literal["softplus", "sigmoid", "exp", "gelu"] = "softplus"
    weighting_normalize: bool = Field(False, description="Rescale each chunk's token weights to mean 1 (not in the "
                                      "official code, where the weights scale the inner loss freely).")

    @model_validator(mode="before")
    @classmethod
    def _shuffle_chunks_is_doc_ids(cls, data: Any) -> Any:
        """Configs written before ``doc_ids`` (meta-checkpoints among them) said ``shuffle_chunks: true|false``."""
        if isinstance(data, dict) and "shuffle_chunks" in data:
            data = dict(data)
            data.setdefault("doc_ids", "shuffled" if data.pop("shuffle_chunks") else "in_order")
        return data

    @model_validator(mode="after")
    def _truncation_within_steps(self) -> InnerConfig:
        if self.truncation > self.steps:
            raise ValueError(
                f"inner.truncation={self.truncation} must be <= inner.steps={self.steps} "
                "(T counts the last inner steps that keep their graph)"
            )
        return self


class OuterConfig(_Section):
    """Meta-training: AdamW on the meta-parameters (LoRA init, learned rates, weighting model)."""

    lr: float = Field(1e-5, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = Field(0.01, ge=0)
    warmup_frac: float = Field(0.03, ge=0, le=1)
    grad_clip: float | None = Field(1.0, gt=0)
    batch_size: int = Field(1, ge=1, description="Tasks (contexts) per meta-step, over all workers.")
    epochs: int = Field(2, ge=1)
    lr_lr: float | None = Field(None, gt=0, description="Outer LR for the learned inner rates, which are learned in "
                                "log space: a step of lr_lr changes a rate by a factor of about exp(lr_lr). Default "
                                "outer.lr / inner.lr: the relative change a step of outer.lr makes to a raw rate (the "
                                "official code learns raw rates at the outer lr).")
    use_support: bool = True
    max_new_tokens: int = Field(32, ge=1)


class DataConfig(_Section):
    """Where tasks come from: Parquet/JSONL splits in the project's schema, or a generator."""

    task: str = "kv-recall"
    train_path: str | None = None
    dev_path: str | None = None
    test_path: str | None = None
    lengths: list[int] = [256]
    test_lengths: list[int] | None = Field(None, description="Lengths of the generated test split (default: lengths).")
    train_count: int = Field(200, ge=1)
    dev_count: int = Field(32, ge=1)
    test_count: int = Field(64, ge=1)
    seed: int = 0


class TrainConfig(_Section):
    """Distribution, checkpoints and run control of the meta-training job."""

    strategy: Literal["ddp", "fsdp", "cp"] = "ddp"
    fsdp_full_shard: bool = Field(False, description="fsdp: keep the frozen weights sharded during the meta-step too "
                                  "(gathered per use in forward, backward and double backward), not only at rest.")
    num_workers: int = Field(1, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    torch_threads: int | None = Field(None, ge=1, description="torch intra-op threads per worker (default: "
                                      "cpus_per_worker); more than reserved when Ray Data must keep a CPU free")
    gpus_per_worker: float = Field(0.0, ge=0)
    output_dir: str = "runs/perk"
    max_steps: int | None = Field(None, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    keep_best: int = Field(2, ge=1)
    eval_every: int = Field(50, ge=1)
    max_failures: int = Field(2, ge=0)
    seed: int = 0
    log_every: int = Field(10, ge=1)
    tracking: Literal["none", "mlflow", "wandb"] = "none"
    tracking_project: str = "perk-ray"


class ServeConfig(_Section):
    """The Ray Serve application: checkpoint, request limits, API keys, cache and scaling."""

    checkpoint: str | None = None
    max_context_tokens: int = Field(8192, ge=1)
    max_questions: int = Field(16, ge=1)
    max_body_bytes: int = Field(2 * 2**20, ge=1, description="Largest request body: larger ones get 413 unread.")
    max_text_bytes: int = Field(2**20, ge=1, description="Largest document in UTF-8 bytes, checked before "
                                "tokenising (413).")
    max_question_bytes: int = Field(4096, ge=1, description="Largest question in UTF-8 bytes (413).")
    max_question_tokens: int = Field(256, ge=1, description="Largest question in tokens (413).")
    max_new_tokens: int = Field(256, ge=1, description="Cap on max_tokens of /v1/chat/completions (larger "
                                "requests are cut to it).")
    request_timeout_s: float = Field(120.0, gt=0)
    api_keys_file: str | None = Field(None, description="A file of tenant:key lines; clients send "
                                      "Authorization: Bearer <key>. None: no authentication, one shared tenant.")
    replica_stall_s: float = Field(600.0, gt=0, description="A model replica busy on one call for longer fails "
                                   "its health check and is replaced.")
    cache_bytes: int = Field(512 * 2**20, ge=0)
    cache_dir: str | None = None
    encoder_min_replicas: int = Field(1, ge=0)
    encoder_max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(1.0, gt=0)
    answerer_replicas: int = Field(1, ge=1)
    max_adapters_per_replica: int = Field(8, ge=1)


class PerkConfig(_Section):
    """The whole configuration."""

    preset: str = "tiny"
    model: ModelConfig = ModelConfig()
    lora: LoraConfig = LoraConfig()
    inner: InnerConfig = InnerConfig()
    outer: OuterConfig = OuterConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    serve: ServeConfig = ServeConfig()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        field = ".".join(str(part) for part in e["loc"]) or "<root>"
        value = e.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"config field `{field}`: {msg} (got {shown})")
    return "\n".join(lines)


def build_config(data: dict[str, Any]) -> PerkConfig:
    """Validate a nested dict into a PerkConfig, raising ConfigError that names each bad field."""
    try:
        return PerkConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None


def _parse_value(text: str) -> Any:
    """Parse an override value: YAML scalars and lists (``4``, ``1e-4``, ``true``, ``[a, b]``, ``null``)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.field=value`` overrides to a nested dict (in place, returned for chaining)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected section.field=value, e.g. inner.steps=4")
        parts = key.split(".")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: `{part}` is a value, not a section")
            node = child
        node[parts[-1]] = _parse_value(raw)
    return data


def read_preset(name: str) -> dict[str, Any]:
    """The raw dict of a preset (a name in perk_ray/presets or a path to a YAML file)."""
    path = Path(name)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown preset {name!r}: choose one of {available_presets()} or give a YAML file path")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset {name!r} ({path}) must be a YAML mapping of sections")
    data.setdefault("preset", name)
    return data


def load_config(preset: str = "tiny", overrides: list[str] | None = None) -> PerkConfig:
    """Load a preset and apply dotted overrides."""
    return build_config(apply_overrides(read_preset(preset), list(overrides or [])))


def config_from_file(path: str | Path) -> PerkConfig:
    """Load a full config written by ``PerkConfig.to_yaml`` (e.g. from a checkpoint)."""
    return build_config(yaml.safe_load(Path(path).read_text()) or {})
