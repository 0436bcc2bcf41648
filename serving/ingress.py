"""The HTTP ingress (FastAPI, OpenAPI at /docs): validation, request timeout, tenants, cache look-ups, deduplication.

Native routes: POST /v1/contexts, POST /v1/answers, GET and DELETE /v1/contexts/{id}, GET /healthz. OpenAI-compatible
routes: GET /v1/models (the caller's contexts) and POST /v1/chat/completions (``model`` = a context id). Every route
but /healthz passes serving.gate first (API key, body cap). A tenant only ever finds its own contexts. Encoding runs
on the ``Encoder`` deployment, answering on the ``Answerer`` deployment, adapters are shared through the
``AdapterStore``; a call whose replica died is retried while Serve replaces it.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Path
from fastapi.exceptions import RequestValidationError
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from perk_ray.config import PerkConfig
from perk_ray.engine import Memory
from perk_ray.model import load_tokenizer
from serving.auth import ApiKeys
from serving.cache import adapter_info, context_key, storage_key
from serving.deployments import Answered, ContextNotFound, Encoded
from serving.errors import http_error, validation_error
from serving.gate import Gate, GatePolicy, request_tenant
from serving.openai_schemas import AssistantMessage, ChatCompletion, ChatRequest, Choice, ModelCard, ModelList, Usage
from serving.schemas import (
    CONTEXT_ID_PATTERN, AdapterInfo, AnswerRequest, AnswerResponse, ContextRequest, ContextResponse, Deleted, Health,
    Meta, Timings, is_context_id,
)
from serving.settings import engine_config, engine_digest, serving_note
from serving.validation import check_questions, check_text

logger = logging.getLogger("ray.serve")
T = TypeVar("T")
REPLICA_ERRORS = (RayActorError, ReplicaUnavailableError)
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)  # then 503; the request timeout bounds the whole

api = FastAPI(
    title="perk-ray",
    version="0.1.0",
    description="PERK: a document is encoded into a LoRA adapter (memory) at inference time; questions are "
                "answered by the frozen base model plus that adapter, without the document in the prompt.",
)
api.add_middleware(Gate)
api.add_exception_handler(RequestValidationError, validation_error)
api.add_exception_handler(StarletteHTTPException, http_error)
Tenant = Annotated[str, Depends(request_tenant)]
ContextIdPath = Annotated[str, Path(pattern=CONTEXT_ID_PATTERN, description="An id from POST /v1/contexts.")]


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


@dataclass
class Prepared:
    """A document's adapter for one request: ``encoded`` is set when it was encoded for (or during) the request."""

    key: str  # storage key
    info: AdapterInfo
    encoded: Encoded | None
    cached: bool


def _not_found(context_id: str) -> HTTPException:
    return HTTPException(404, f"unknown context_id {context_id!r}: POST /v1/contexts first "
                              "(or it was deleted or evicted from the cache)")


@serve.deployment(max_ongoing_requests=256, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class PerkAPI:
    """HTTP ingress: validation, the request timeout, cache look-ups and one encoding per document at a time."""

    def __init__(self, cfg: PerkConfig, encoder: DeploymentHandle, answerer: DeploymentHandle,
                 store: DeploymentHandle):
        self.cfg = cfg
        self.encoder, self.answerer, self.store = encoder, answerer, store
        ecfg = engine_config(cfg)
        self.tokenizer = load_tokenizer(ecfg.model.name)
        self.digest = engine_digest(cfg)
        self.default_new_tokens = ecfg.outer.max_new_tokens
        self.limit = min((cfg.serve.max_context_tokens, "serve.max_context_tokens"),
                         (ecfg.inner.max_context_tokens, "inner.max_context_tokens"))
        self.meta = Meta(model=ecfg.model.name, preset=cfg.preset, checkpoint=cfg.serve.checkpoint,
                         note=serving_note(cfg))
        self._inflight: dict[str, asyncio.Task[tuple[AdapterInfo, Encoded]]] = {}
        keys = ApiKeys.from_file(cfg.serve.api_keys_file) if cfg.serve.api_keys_file else None
        Gate.configure(GatePolicy(keys, cfg.serve.max_body_bytes))
        if keys is None:
            logger.warning("no API keys (serve.api_keys_file / PERK_API_KEYS_FILE): every client is let in and "
                           "shares one tenant's contexts")
        else:
            logger.info(f"API keys of {len(keys.tenants)} tenants from {cfg.serve.api_keys_file}")
        if self.meta.note:
            logger.warning(self.meta.note)
        else:
            logger.info(f"serving checkpoint {cfg.serve.checkpoint} ({ecfg.model.name})")

    @api.get("/healthz")
    async def healthz(self) -> Health:
        return Health(status="ok", meta=self.meta, cache=await self.store.stats.remote())

    @api.post("/v1/contexts")
    async def create_context(self, request: ContextRequest, tenant: Tenant) -> ContextResponse:
        """Encode a document into an adapter and keep it (once per document: later requests hit the cache)."""
        start = time.perf_counter()
        prepared = await self._timed(self._context(tenant, request.text))
        return ContextResponse(**prepared.info.model_dump(), cached=prepared.cached, elapsed_ms=_ms_since(start),
                               meta=self._meta(prepared.encoded))

    @api.get("/v1/contexts/{context_id}")
    async def get_context(self, context_id: ContextIdPath, tenant: Tenant) -> AdapterInfo:
        info = await self._timed(self._call(lambda: self.store.info.remote(storage_key(tenant, context_id))))
        if info is None:
            raise _not_found(context_id)
        return info

    @api.delete("/v1/contexts/{context_id}")
    async def delete_context(self, context_id: ContextIdPath, tenant: Tenant) -> Deleted:
        if not await self._timed(self._call(lambda: self.store.delete.remote(storage_key(tenant, context_id)))):
            raise _not_found(context_id)
        return Deleted(context_id=context_id, deleted=True)

    @api.post("/v1/answers")
    async def answer(self, request: AnswerRequest, tenant: Tenant) -> AnswerResponse:
        """Answer questions from a stored context, or from a document (encoded first unless cached)."""
        check_questions(self.tokenizer, request.questions, self.cfg.serve)
        return await self._timed(self._answer(tenant, request, time.perf_counter()))

    @api.get("/v1/models")
    async def models(self, tenant: Tenant) -> ModelList:
        """OpenAI-compatible: the caller's contexts, each usable as ``model`` in /v1/chat/completions."""
        infos = await self._timed(self._call(lambda: self.store.infos.remote(tenant)))
        owner = tenant or "perk-ray"
        return ModelList(data=[ModelCard(id=i.context_id, created=i.created, owned_by=owner) for i in infos])

    @api.post("/v1/chat/completions")
    async def chat_completions(self, request: ChatRequest, tenant: Tenant) -> ChatCompletion:
        """OpenAI-compatible: the last user message answered (greedily) from the adapter of context ``model``."""
        question = request.question()
        if not question or not question.strip():
            raise HTTPException(422, "messages: give a user message with text (it is the question)")
        check_questions(self.tokenizer, [question], self.cfg.serve)
        wanted = request.max_completion_tokens or request.max_tokens or self.default_new_tokens
        max_new = min(wanted, self.cfg.serve.max_new_tokens)
        return await self._timed(self._chat(tenant, request.model, question, max_new))

    async def _chat(self, tenant: str, model: str, question: str, max_new: int) -> ChatCompletion:
        unknown = HTTPException(404, f"unknown model {model!r}: a model is a context id of yours "
                                     "(GET /v1/models lists them; POST /v1/contexts makes one)")
        if not is_context_id(model):  # unknown without a look-up
            raise unknown
        key = storage_key(tenant, model)
        if await self._call(lambda: self.store.info.remote(key)) is None:
            raise unknown
        result = await self._ask(key, model, [question], max_new_tokens=max_new)
        completion = result.completion_tokens[0]
        usage = Usage(prompt_tokens=result.prompt_tokens[0], completion_tokens=completion,
                      total_tokens=result.prompt_tokens[0] + completion)
        choice = Choice(index=0, message=AssistantMessage(content=result.answers[0]),
                        finish_reason="length" if completion >= max_new else "stop")
        return ChatCompletion(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=model,
                              choices=[choice], usage=usage)

    async def _answer(self, tenant: str, request: AnswerRequest, start: float) -> AnswerResponse:
        if request.text is not None:
            prepared = await self._context(tenant, request.text)
        else:
            key = storage_key(tenant, request.context_id)
            if (info := await self._call(lambda: self.store.info.remote(key))) is None:
                raise _not_found(request.context_id)
            prepared = Prepared(key, info, None, cached=True)
        info, encoded = prepared.info, prepared.encoded
        result = await self._ask(prepared.key, info.context_id, request.questions,
                                 memory=None if encoded is None else encoded.memory)
        timings = Timings(encode_ms=0.0 if prepared.cached else info.encode_ms, answer_ms=result.answer_ms,
                          total_ms=_ms_since(start))
        return AnswerResponse(context_id=info.context_id, answers=result.answers, cached=prepared.cached,
                              timings=timings, meta=self._meta(encoded, result.replica))

    async def _ask(self, key: str, context_id: str, questions: list[str], memory: Memory | None = None,
                   max_new_tokens: int | None = None) -> Answered:
        """Answer from ``memory`` when at hand, else from the store's adapter ``key``, routed to a replica that
        holds it (multiplexed by storage key)."""
        handle = self.answerer if memory is not None else self.answerer.options(multiplexed_model_id=key)
        try:
            return await self._call(lambda: handle.answer.remote(questions, memory, max_new_tokens))
        except ContextNotFound:
            raise _not_found(context_id) from None

    async def _context(self, tenant: str, text: str) -> Prepared:
        """The document's adapter: from the store, from an encoding in flight, or encoded now."""
        await asyncio.to_thread(check_text, self.tokenizer, text, self.cfg.serve, self.limit)
        context_id = context_key(self.digest, tenant, text)
        key = storage_key(tenant, context_id)
        if (info := await self._call(lambda: self.store.info.remote(key))) is not None:
            return Prepared(key, info, None, cached=True)
        if (task := self._inflight.get(key)) is not None:
            return Prepared(key, *await asyncio.shield(task), cached=True)
        task = asyncio.create_task(self._encode(key, tenant, context_id, text))
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # shielded: a timed-out or disconnected request lets the encoding finish and be cached
        return Prepared(key, *await asyncio.shield(task), cached=False)

    async def _encode(self, key: str, tenant: str, context_id: str, text: str) -> tuple[AdapterInfo, Encoded]:
        encoded: Encoded = await self._call(lambda: self.encoder.encode.remote(text))
        info = adapter_info(context_id, encoded.memory)
        await self._call(lambda: self.store.put.remote(key, tenant, info, encoded.memory))
        return info, encoded

    async def _call(self, make: Callable[[], Awaitable[T]]) -> T:
        """A deployment call, retried while Serve replaces a replica that died under it; then 503."""
        for delay in RETRY_DELAYS_S:
            try:
                return await make()
            except REPLICA_ERRORS as err:
                logger.warning(f"replica call failed ({type(err).__name__}); retrying in {delay:g}s")
                await asyncio.sleep(delay)
        try:
            return await make()
        except REPLICA_ERRORS:
            raise HTTPException(503, "a replica failed and no replacement answered yet: retry",
                                headers={"Retry-After": "5"}) from None

    async def _timed(self, work: Awaitable[T]) -> T:
        timeout = self.cfg.serve.request_timeout_s
        try:
            return await asyncio.wait_for(work, timeout)
        except asyncio.TimeoutError:
            raise HTTPException(504, f"request took longer than serve.request_timeout_s={timeout:g}s "
                                     "(an encoding it started goes on and is cached)") from None

    def _meta(self, encoded: Encoded | None, answerer_replica: str | None = None) -> Meta:
        return self.meta.model_copy(update={"encoder_replica": encoded and encoded.replica,
                                            "answerer_replica": answerer_replica})
