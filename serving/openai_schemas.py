"""Bodies of the OpenAI-compatible routes (GET /v1/models, POST /v1/chat/completions): the fields clients use."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import Text


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients send options this server has no use for


class ContentPart(_Lenient):
    type: str
    text: Text | None = None


class ChatMessage(_Lenient):
    role: str
    content: Text | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatRequest(_Lenient):
    """Answered greedily from the adapter of context ``model``; sampling options are ignored."""

    model: str = Field(description="A context id (see GET /v1/models).")
    messages: list[ChatMessage] = Field(min_length=1, description="The last user message is the question.")
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="Preferred over max_tokens when both are set.")
    n: Literal[1] = 1
    stream: Literal[False] = Field(False, description="Streaming is not supported.")

    def question(self) -> str | None:
        users = [m for m in self.messages if m.role == "user"]
        return users[-1].text() if users else None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
