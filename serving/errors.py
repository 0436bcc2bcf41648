"""Error bodies: FastAPI's ``{"detail": ...}`` on the native routes, ``{"error": {"message", ...}}`` on the
OpenAI-compatible ones (what OpenAI clients read); validation errors never echo the client's input back."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import Scope

OPENAI_PATHS = frozenset({"/v1/models", "/v1/chat/completions"})


def route_path(scope: Scope) -> str:
    return scope["path"].removeprefix(scope.get("root_path", "")) or "/"


def error_response(scope: Scope, status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    if route_path(scope) not in OPENAI_PATHS:
        return JSONResponse({"detail": detail}, status, headers=headers)
    if not isinstance(detail, str):
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    kind = "authentication_error" if status == 401 else "invalid_request_error" if status < 500 else "server_error"
    return JSONResponse({"error": {"message": detail, "type": kind, "param": None, "code": None}}, status,
                        headers=headers)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(request.scope, exc.status_code, exc.detail, exc.headers)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 without the offending input: it may be huge, deeply nested or not encodable as UTF-8."""
    detail = [{"type": e["type"], "loc": [_printable(part) for part in e["loc"]], "msg": e["msg"]}
              for e in exc.errors()]
    return error_response(request.scope, 422, detail)


def _printable(part: str | int) -> str | int:
    """A location part (a field name, maybe the client's): at most 64 characters, UTF-8 encodable."""
    return part if isinstance(part, int) else part[:64].encode("utf-8", "replace").decode()
