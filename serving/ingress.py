"""The HTTP ingress (FastAPI, OpenAPI at /docs): validation, request timeout, cache look-ups, deduplication.

Routes: POST /v1/contexts, POST /v1/answers, GET and DELETE /v1/contexts/{id}, GET /healthz. Encoding runs on the
``Encoder`` deployment, answering on the ``Answerer`` deployment, adapters are shared through the ``AdapterStore``.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import FastAPI, HTTPException
from ray import serve
from ray.serve.handle import DeploymentHandle

from perk_ray.chunking import context_token_ids
from perk_ray.config import PerkConfig
from perk_ray.errors import InputError
from perk_ray.model import load_tokenizer
from serving.cache import adapter_info, context_key
from serving.deployments import ContextNotFound, Encoded
from serving.schemas import (
    AdapterInfo, AnswerRequest, AnswerResponse, ContextRequest, ContextResponse, Deleted, Health, Meta, Timings,
)
from serving.settings import engine_config, engine_digest, serving_note

logger = logging.getLogger("ray.serve")
T = TypeVar("T")

api = FastAPI(
    title="perk-ray",
    version="0.1.0",
    description="PERK: a document is encoded into a LoRA adapter (memory) at inference time; questions are "
                "answered by the frozen base model plus that adapter, without the document in the prompt.",
)


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


@dataclass
class Prepared:
    """A document's adapter for one request: ``encoded`` is set when it was encoded for (or during) the request."""

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
        self.limit = min((cfg.serve.max_context_tokens, "serve.max_context_tokens"),
                         (ecfg.inner.max_context_tokens, "inner.max_context_tokens"))
        self.meta = Meta(model=ecfg.model.name, preset=cfg.preset, checkpoint=cfg.serve.checkpoint,
                         note=serving_note(cfg))
        self._inflight: dict[str, asyncio.Task[tuple[AdapterInfo, Encoded]]] = {}
        if self.meta.note:
            logger.warning(self.meta.note)
        else:
            logger.info(f"serving checkpoint {cfg.serve.checkpoint} ({ecfg.model.name})")

    @api.get("/healthz")
    async def healthz(self) -> Health:
        return Health(status="ok", meta=self.meta, cache=await self.store.stats.remote())

    @api.post("/v1/contexts")
    async def create_context(self, request: ContextRequest) -> ContextResponse:
        """Encode a document into an adapter and keep it (once per document: later requests hit the cache)."""
        start = time.perf_counter()
        prepared = await self._timed(self._context(request.text))
        return ContextResponse(**prepared.info.model_dump(), cached=prepared.cached, elapsed_ms=_ms_since(start),
                               meta=self._meta(prepared.encoded))

    @api.get("/v1/contexts/{context_id}")
    async def get_context(self, context_id: str) -> AdapterInfo:
        info = await self._timed(self.store.info.remote(context_id))
        if info is None:
            raise _not_found(context_id)
        return info

    @api.delete("/v1/contexts/{context_id}")
    async def delete_context(self, context_id: str) -> Deleted:
        if not await self._timed(self.store.delete.remote(context_id)):
            raise _not_found(context_id)
        return Deleted(context_id=context_id, deleted=True)

    @api.post("/v1/answers")
    async def answer(self, request: AnswerRequest) -> AnswerResponse:
        """Answer questions from a stored context, or from a document (encoded first unless cached)."""
        self._check_questions(request.questions)
        return await self._timed(self._answer(request, time.perf_counter()))

    async def _answer(self, request: AnswerRequest, start: float) -> AnswerResponse:
        if request.text is not None:
            prepared = await self._context(request.text)
        elif (info := await self.store.info.remote(request.context_id)) is not None:
            prepared = Prepared(info, None, cached=True)
        else:
            raise _not_found(request.context_id)
        info, encoded = prepared.info, prepared.encoded
        try:
            if encoded is None:  # from the store: routed to a replica that holds this adapter, if any
                handle = self.answerer.options(multiplexed_model_id=info.context_id)
                result = await handle.answer.remote(request.questions)
            else:  # just encoded: the adapter is at hand, pass it along
                result = await self.answerer.answer.remote(request.questions, encoded.memory)
        except ContextNotFound:
            raise _not_found(info.context_id) from None
        timings = Timings(encode_ms=0.0 if prepared.cached else info.encode_ms, answer_ms=result.answer_ms,
                          total_ms=_ms_since(start))
        return AnswerResponse(context_id=info.context_id, answers=result.answers, cached=prepared.cached,
                              timings=timings, meta=self._meta(encoded, result.replica))

    async def _context(self, text: str) -> Prepared:
        """The document's adapter: from the store, from an encoding in flight, or encoded now."""
        await asyncio.to_thread(self._check_text, text)
        key = context_key(self.digest, text)
        if (info := await self.store.info.remote(key)) is not None:
            return Prepared(info, None, cached=True)
        if (task := self._inflight.get(key)) is not None:
            return Prepared(*await asyncio.shield(task), cached=True)
        task = asyncio.create_task(self._encode(key, text))
        self._inflight[key] = task
        task.add_done_callback(lambda _: self._inflight.pop(key, None))
        # shielded: a timed-out or disconnected request lets the encoding finish and be cached
        return Prepared(*await asyncio.shield(task), cached=False)

    async def _encode(self, key: str, text: str) -> tuple[AdapterInfo, Encoded]:
        encoded: Encoded = await self.encoder.encode.remote(text)
        info = adapter_info(key, encoded.memory)
        await self.store.put.remote(info, encoded.memory)
        return info, encoded

    def _check_text(self, text: str) -> None:
        try:
            tokens = sum(len(ids) for ids in context_token_ids(self.tokenizer, text))
        except InputError as err:
            raise HTTPException(422, f"text: {err}") from None
        limit, field = self.limit
        if tokens > limit:
            raise HTTPException(413, f"text has {tokens} tokens, over the limit {field}={limit}")

    def _check_questions(self, questions: list[str]) -> None:
        limit = self.cfg.serve.max_questions
        if not questions or any(not q.strip() for q in questions):
            raise HTTPException(422, "questions must be a non-empty list of non-blank strings")
        if len(questions) > limit:
            raise HTTPException(422, f"{len(questions)} questions, over the limit serve.max_questions={limit}")

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
