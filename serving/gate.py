"""ASGI middleware in front of every route: the API key (401) and the request-body byte cap (413).

Serve runs a frozen copy of the FastAPI app, out of reach of the ingress constructor, so the constructor configures
the middleware class of its process (``Gate.configure``); until then every request gets 503. The tenant of an
authenticated request is left in ``request.state.tenant``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.auth import OPEN_TENANT, ApiKeys
from serving.errors import error_response, route_path

OPEN_PATHS = frozenset({"/healthz"})
UNAUTHORIZED = "missing or unknown API key: send the header Authorization: Bearer <key>"


@dataclass(frozen=True)
class GatePolicy:
    keys: ApiKeys | None  # None: no authentication, every request is OPEN_TENANT's
    max_body_bytes: int


def _too_large(limit: int) -> str:
    return f"request body over the limit serve.max_body_bytes={limit}"


class Gate:
    policy: ClassVar[GatePolicy | None] = None

    def __init__(self, app: ASGIApp):
        self.app = app

    @classmethod
    def configure(cls, policy: GatePolicy) -> None:
        cls.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        policy = Gate.policy
        if policy is None:
            return await error_response(scope, 503, "starting up")(scope, receive, send)
        headers = dict(scope["headers"])
        tenant = OPEN_TENANT
        if policy.keys is not None and route_path(scope) not in OPEN_PATHS:
            auth = headers.get(b"authorization", b"").decode("latin-1")
            if (tenant := policy.keys.tenant(auth)) is None:
                response = error_response(scope, 401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
                return await response(scope, receive, send)
        scope.setdefault("state", {})["tenant"] = tenant
        limit = policy.max_body_bytes
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await error_response(scope, 413, _too_large(limit))(scope, receive, send)
        received = 0

        async def bounded_receive() -> Message:  # a body without (or lying about) its length is counted
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, bounded_receive, send)


def request_tenant(request: Request) -> str:
    """The tenant the gate authenticated (a FastAPI dependency)."""
    return request.state.tenant
