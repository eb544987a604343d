"""The HTTP edge shared by every router: error rendering, the runtime, and who is calling.

Domain code raises `polku.errors.PolkuError`; this module alone turns it (and FastAPI's own
request-validation errors) into JSON ``{"error": {"code", "message", "field", "hint"}}``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from polku.access.queries import admin_workspace
from polku.errors import PolkuError, Unauthorized, Unavailable

if TYPE_CHECKING:
    from polku.runtime import Runtime

__all__ = [
    "AdminWorkspace",
    "basic_auth_username",
    "install_error_handlers",
    "json_response",
    "runtime",
]

logger = logging.getLogger(__name__)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def error_response(exc: PolkuError) -> Response:
    headers = {}
    if isinstance(exc, Unavailable):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Basic realm="polku"'
    return json_response({"error": exc.as_dict()}, exc.status, headers)


def install_error_handlers(app: FastAPI) -> None:
    async def polku_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PolkuError)
        if exc.status >= 500 and not isinstance(exc, Unavailable):
            logger.error("internal error: %s", exc, exc_info=exc)
        return error_response(exc)

    async def validation_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":  # loc is ("body", <character position>)
            where = (first.get("loc") or ("body", "?"))[-1]
            return json_response(
                {
                    "error": {
                        "code": "invalid_json",
                        "message": f"The body is not valid JSON (at character {where}): "
                        f"{(first.get('ctx') or {}).get('error', 'decode error')}.",
                        "hint": "Send a JSON object; check it with a JSON validator.",
                    }
                },
                400,
            )
        where = ("body", "query", "path", "header")  # the field's name is what the caller sent
        location = [str(part) for part in first.get("loc", ()) if part not in where]
        field = ".".join(location) or None
        return json_response(
            {
                "error": {
                    "code": "invalid_field",
                    "message": f"{field or 'request'}: {first.get('msg', 'invalid value')}",
                    "field": field,
                    "hint": "See the OpenAPI document at /openapi.json for the expected shape.",
                }
            },
            400,
        )

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return json_response(
            {"error": {"code": code, "message": str(exc.detail)}}, exc.status_code, exc.headers
        )

    async def unexpected(_request: Request, exc: Exception) -> Response:
        logger.error("unexpected error", exc_info=exc)
        return json_response(
            {
                "error": {
                    "code": "internal_error",
                    "message": "Polku hit an unexpected error; it has been logged.",
                }
            },
            500,
        )

    app.add_exception_handler(PolkuError, polku_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def basic_auth_username(header: str | None) -> str | None:
    """The username of an HTTP Basic ``Authorization`` header (Segment puts the write key there)."""
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=False).decode("utf-8")
    except (binascii.Error, ValueError):  # ValueError covers UnicodeDecodeError
        return None
    return decoded.split(":", 1)[0] or None


def _admin_workspace(request: Request) -> str:
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token:
        raise Unauthorized(
            "This endpoint needs an admin token.",
            hint="Send `Authorization: Bearer <token>`; create one with `polku keys create-admin`.",
        )
    rt = runtime(request)
    with rt.engine.connect() as conn:
        workspace = admin_workspace(conn, token)
    if workspace is None:
        raise Unauthorized(
            "The admin token is unknown or revoked.",
            hint="Create a new one with `polku keys create-admin`.",
        )
    return workspace


AdminWorkspace = Annotated[str, Depends(_admin_workspace)]
"""A route parameter that authenticates the admin token and yields its workspace id."""
