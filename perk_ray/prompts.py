"""The question prompt (no context in it) and the response format of the outer loss."""

from __future__ import annotations

import re

_OUTPUT = re.compile(r"<output>(.*?)(?:</output>|$)", re.DOTALL)


def question_prompt(num_documents: int, question: str) -> str:
    return f"You have memorized {num_documents} documents.\n{question.strip()}\nAnswer:"


def response_text(answer: str, support: list[str] | None, use_support: bool) -> str:
    """`` <support>facts</support>\\n<output>answer</output>`` when supporting facts are known, else `` answer``."""
    if use_support and support:
        return f" <support>{' '.join(s.strip() for s in support)}</support>\n<output>{answer.strip()}</output>"
    return f" {answer.strip()}"


def extract_answer(generated: str) -> str:
    """The answer inside ``<output>`` when present, else the first line of the generation."""
    match = _OUTPUT.search(generated)
    text = match.group(1) if match else generated.strip().split("\n", 1)[0]
    return text.strip()
