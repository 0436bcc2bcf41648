"""Input checks of the ingress, each error naming the limit: documents and questions by bytes (before tokenising),
then by tokens."""

from __future__ import annotations

from fastapi import HTTPException
from transformers import PreTrainedTokenizerBase

from perk_ray.chunking import context_token_ids
from perk_ray.config import ServeConfig
from perk_ray.errors import InputError


def check_text(tokenizer: PreTrainedTokenizerBase, text: str, s: ServeConfig, token_limit: tuple[int, str]) -> None:
    """413 over ``serve.max_text_bytes`` (not tokenised) or over ``token_limit`` (value, field name); 422 if empty."""
    if (nbytes := len(text.encode())) > s.max_text_bytes:
        raise HTTPException(413, f"text has {nbytes} bytes, over the limit serve.max_text_bytes={s.max_text_bytes}")
    try:
        tokens = sum(len(ids) for ids in context_token_ids(tokenizer, text))
    except InputError as err:
        raise HTTPException(422, f"text: {err}") from None
    limit, field = token_limit
    if tokens > limit:
        raise HTTPException(413, f"text has {tokens} tokens, over the limit {field}={limit}")


def check_questions(tokenizer: PreTrainedTokenizerBase, questions: list[str], s: ServeConfig) -> None:
    """422 for no, blank or too many questions; 413 for one over ``serve.max_question_bytes`` or ``_tokens``."""
    if not questions or any(not q.strip() for q in questions):
        raise HTTPException(422, "questions must be a non-empty list of non-blank strings")
    if len(questions) > s.max_questions:
        raise HTTPException(422, f"{len(questions)} questions, over the limit serve.max_questions={s.max_questions}")
    for i, question in enumerate(questions):
        if (nbytes := len(question.encode())) > s.max_question_bytes:
            raise HTTPException(413, f"question {i} has {nbytes} bytes, over the limit "
                                     f"serve.max_question_bytes={s.max_question_bytes}")
        if (tokens := len(tokenizer.encode(question, add_special_tokens=False))) > s.max_question_tokens:
            raise HTTPException(413, f"question {i} has {tokens} tokens, over the limit "
                                     f"serve.max_question_tokens={s.max_question_tokens}")
