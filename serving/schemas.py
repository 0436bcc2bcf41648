"""Request and response bodies of the HTTP API (published as OpenAPI at /docs and /openapi.json)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

CONTEXT_ID_PATTERN = r"^[0-9a-f]{32}$"


def is_context_id(value: str) -> bool:
    return re.fullmatch(CONTEXT_ID_PATTERN, value) is not None


ContextId = Annotated[str, Field(pattern=CONTEXT_ID_PATTERN, description="An id from POST /v1/contexts.")]


def _utf8(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid UTF-8 (lone surrogate escape)") from None
    return value


Text = Annotated[str, AfterValidator(_utf8)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContextRequest(_Body):
    text: Text = Field(description="The document to encode into an adapter (memory).")


class AnswerRequest(_Body):
    context_id: ContextId | None = None
    text: Text | None = Field(None, description="A document: encoded first (or found in the cache).")
    questions: list[Text] = Field(description="Questions answered from the adapter alone, in one batch.")

    @model_validator(mode="after")
    def _one_source(self) -> AnswerRequest:
        if (self.context_id is None) == (self.text is None):
            raise ValueError("give exactly one of context_id and text")
        return self


class AdapterInfo(_Body):
    """An encoded context, without its tensors."""

    context_id: str
    tokens: int = Field(description="Tokens of the document.")
    chunks: int = Field(description="Chunks the document was cut into.")
    nbytes: int = Field(description="Size of the adapter's LoRA tensors.")
    encode_ms: float = Field(description="Time the encoding took, when it was done.")
    created: int = Field(0, description="When it was encoded (Unix time).")


class Meta(_Body):
    """What served the request."""

    model: str
    preset: str
    checkpoint: str | None
    note: str | None = Field(None, description="Set when no meta-checkpoint is served (e.g. the tiny preset).")
    encoder_replica: str | None = None
    answerer_replica: str | None = None


class ContextResponse(AdapterInfo):
    cached: bool = Field(description="True when this request started no encoding (cache hit or joined one).")
    elapsed_ms: float
    meta: Meta


class Timings(_Body):
    encode_ms: float = Field(description="Encoding done for this request (0 when cached).")
    answer_ms: float
    total_ms: float


class AnswerResponse(_Body):
    context_id: str
    answers: list[str]
    cached: bool
    timings: Timings
    meta: Meta


class CacheStats(_Body):
    entries: int
    bytes: int
    capacity_bytes: int
    directory: str | None
    hits: int
    disk_hits: int
    misses: int
    evictions: int


class Health(_Body):
    status: str
    meta: Meta
    cache: CacheStats


class Deleted(_Body):
    context_id: str
    deleted: bool
