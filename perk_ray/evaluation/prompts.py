"""The prompt-based baselines' prompt (context in the prompt) and fitting it into the model's window."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from transformers import PreTrainedTokenizerBase

from perk_ray.data.schema import SEGMENT_SEPARATOR
from perk_ray.errors import InputError
from perk_ray.prompts import question_prompt

Overflow = Literal["truncate", "skip"]
Template = Literal["plain", "chat"]
PromptBuilder = Callable[[str, str], str]
QuestionBuilder = Callable[[int, str], str]


def icl_prompt(context: str, question: str) -> str:
    """The context, then the question and ``Answer:`` (the same answer cue as PERK's memory prompt)."""
    return f"{context}\n\n{question.strip()}\nAnswer:"


# What an instruct model is told with the chat template (BabiLong's own prompts do the same: an instruction to
# answer from the facts, the latest fact winning, in a short answer), so that the baseline is not weak by format.
CHAT_INSTRUCTION = ("Read the text, then answer the question from the facts stated in it. When the text states "
                    "several facts about the same person or thing, the most recent one counts. Answer in one short "
                    "sentence.")


# The same instruction for a memory method (``ttl``) whose context is in the LoRA tensors, not in the prompt.
CHAT_MEMORY_INSTRUCTION = ("You have memorized {n} documents. Answer the question from the facts stated in them. "
                           "When they state several facts about the same person or thing, the most recent one counts. "
                           "Answer in one short sentence.")


def _chat_turn(tokenizer: PreTrainedTokenizerBase, content: str) -> str:
    """``content`` as one user turn of the tokenizer's chat template, then the assistant's turn."""
    turn = [{"role": "user", "content": content}]
    return tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)


def _check_chat(tokenizer: PreTrainedTokenizerBase, option: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise InputError(f"{option} chat: the model's tokenizer has no chat template; use plain")


def prompt_builder(tokenizer: PreTrainedTokenizerBase, template: Template) -> PromptBuilder:
    """``plain``: ``icl_prompt``; ``chat``: ``CHAT_INSTRUCTION``, the context and the question as one user turn of
    the tokenizer's chat template, then the assistant's turn (for instruct models, which may end a plain prompt at
    once)."""
    if template == "plain":
        return icl_prompt
    _check_chat(tokenizer, "--icl-template")
    return lambda context, question: _chat_turn(
        tokenizer, f"{CHAT_INSTRUCTION}\n\n{context}\n\nQuestion: {question.strip()}")


def question_builder(tokenizer: PreTrainedTokenizerBase, template: Template) -> QuestionBuilder:
    """A memory method's prompt from the document count and the question: ``plain`` is PERK's ``question_prompt``;
    ``chat`` puts ``CHAT_MEMORY_INSTRUCTION`` and the question into one user turn of the chat template."""
    if template == "plain":
        return question_prompt
    _check_chat(tokenizer, "--ttl-template")
    return lambda num_documents, question: _chat_turn(
        tokenizer, f"{CHAT_MEMORY_INSTRUCTION.format(n=num_documents)}\n\nQuestion: {question.strip()}")


@dataclass(frozen=True)
class FittedPrompt:
    """A prompt that fits the window (``text``), or None when the example is impossible under ``skip``."""

    text: str | None
    prompt_tokens: int
    context_tokens: int
    dropped_tokens: int = 0

    @property
    def status(self) -> str:
        return "impossible" if self.text is None else "truncated" if self.dropped_tokens else "ok"


def _count(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def fit_prompt(tokenizer: PreTrainedTokenizerBase, context: Sequence[str], question: str, max_prompt_tokens: int,
               overflow: Overflow, build: PromptBuilder = icl_prompt) -> FittedPrompt:
    """The ICL prompt (``build``) of a context (segments joined by newlines) within ``max_prompt_tokens`` tokens.

    When it does not fit, ``truncate`` drops context tokens from the left (the question is kept) and ``skip``
    marks the example impossible. A question alone over the limit is impossible either way.
    """
    joined = SEGMENT_SEPARATOR.join(context)
    prompt = build(joined, question)
    total = _count(tokenizer, prompt)
    ids = tokenizer.encode(joined, add_special_tokens=False)
    if total <= max_prompt_tokens:
        return FittedPrompt(prompt, total, len(ids))
    if overflow == "skip":
        return FittedPrompt(None, total, len(ids))
    drop = total - max_prompt_tokens
    while drop < len(ids):  # decoding then re-encoding can merge tokens differently at the cut: re-check
        prompt = build(tokenizer.decode(ids[drop:]), question)
        total = _count(tokenizer, prompt)
        if total <= max_prompt_tokens:
            return FittedPrompt(prompt, total, len(ids), drop)
        drop += total - max_prompt_tokens
    return FittedPrompt(None, _count(tokenizer, build("", question)), len(ids), len(ids))
