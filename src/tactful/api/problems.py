"""Errors as RFC 9457 problem documents, in this one place: the error tree of `tactful.errors`
mapped to statuses, the framework's own refusals and schema faults answered alike, and the OpenAPI
schema made to say so.

    TactfulError ──STATUS──▶ problem(status, code, detail)      application/problem+json
    HTTPException, RequestValidationError, anything else ──▶ problem(...)   (500: the type logged)
    document_problems: every error answer documented as a Problem; 413, 422 and 503 wherever they
    can happen
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tactful.api import ratelimit
from tactful.catalog import drift
from tactful.errors import (
    Conflict,
    InvalidDefinition,
    InvalidInput,
    KeyDestroyed,
    KeystoreLocked,
    MalformedJson,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    TactfulError,
)

log = logging.getLogger("tactful")

STATUS: tuple[tuple[type[TactfulError], int], ...] = (
    (KeystoreLocked, 503),
    (PayloadTooLarge, 413),
    (InvalidInput, 422),
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (KeyDestroyed, 410),
    (Conflict, 409),
    (ServiceUnavailable, 503),
)


HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
"""Problem codes of the refusals that the framework makes before a handler runs. Its 400 is a body
it could not decode: answered as collection answers one (`malformed_json`), see `_http_error`."""


def problem(status: int, code: str, detail: str, **extra: object) -> JSONResponse:
    """An RFC 9457 problem document. `message` repeats `detail` as the Segment and RudderStack APIs
    name it: their libraries read `code` and `message` from any answer but a 200. Without them
    RudderStack's raised a KeyError instead of its API error, so it retried answers that are final (a
    401, a 422) and reported the KeyError rather than what was refused."""
    headers = {"WWW-Authenticate": 'Basic realm="tactful", Bearer'} if status == 401 else None
    body = {"type": f"https://tactful.dev/problems/{code}", "title": code.replace("_", " "), "status": status}
    body |= {"detail": detail, "code": code, "message": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


PROBLEM_REF = "#/components/schemas/Problem"
_FASTAPI_VALIDATION = ("#/components/schemas/HTTPValidationError", "#/components/schemas/ValidationError")
_PROBLEM_SCHEMAS = (*_FASTAPI_VALIDATION, PROBLEM_REF)
_DEFAULT_ERRORS: dict[str, dict[str, Any]] = {
    "413": {"description": "The request body is larger than this route accepts (`request_too_large`)"},
    "422": {
        "description": "The body is not JSON text (`malformed_json`), or the request does not match the "
        "schema (`invalid_input`, with `errors`)"
    },
    "503": {
        "description": "The keystore cannot be opened with the configured TACTFUL_SECRET_KEY "
        "(`keystore_locked`): restart with the key it is wrapped under"
    },
}
_UNAUTHENTICATED_HEADERS = {
    "WWW-Authenticate": {"description": "How to present a key", "schema": {"type": "string"}}
}


def _is_error(status: str) -> bool:
    return status[:1] in ("4", "5") or status == "default"


def _document_operation(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if "401" in responses:
        # Every route that takes a key reads the keystore (its audit entries, a subject's keys).
        responses.setdefault("503", dict(_DEFAULT_ERRORS["503"]))
    if operation.get("parameters") or operation.get("requestBody"):
        responses.setdefault("422", dict(_DEFAULT_ERRORS["422"]))
    if method not in ("get", "head"):
        # `BodyLimit` (or collection's own reader) bounds the body of every other method.
        responses.setdefault("413", dict(_DEFAULT_ERRORS["413"]))
    for status, response in responses.items():
        if not _is_error(status):
            continue
        schemas = [media.get("schema", {}) for media in response.get("content", {}).values()]
        # A route that answers an error of its own shape (readiness) documents it itself.
        if any(schema and schema.get("$ref") not in _PROBLEM_SCHEMAS for schema in schemas):
            continue
        response["content"] = {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
        if status == "401":
            response.setdefault("headers", dict(_UNAUTHENTICATED_HEADERS))


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI schema say what `problem` sends: every error answer is a problem document
    (`application/problem+json`), validation errors included; 413, 422 and 503 wherever they can
    happen."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        schema = generate()
        for item in schema.get("paths", {}).values():
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    _document_operation(method, operation)
        components = schema.get("components", {}).get("schemas", {})
        for ref in _FASTAPI_VALIDATION:
            components.pop(ref.rsplit("/", 1)[-1], None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error with a problem document: the error tree of `tactful.errors` by `STATUS`,
    the framework's own refusals, schema faults (naming only what looks like a name), and anything
    unexpected as a 500 that logs the error's type alone."""

    @app.exception_handler(ratelimit.RateLimited)
    async def _rate_limited(_request: Request, exc: ratelimit.RateLimited) -> JSONResponse:
        response = problem(429, exc.code, exc.message, limit=exc.limit.value)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(TactfulError)
    async def _tactful_error(_request: Request, exc: TactfulError) -> JSONResponse:
        for error_type, status in STATUS:
            if isinstance(exc, error_type):
                field = getattr(exc, "field", None)
                extra: dict[str, object] = {"field": field} if field else {}
                if isinstance(exc, InvalidDefinition):
                    extra["errors"] = [{"loc": p.loc, "msg": p.msg, "type": p.type} for p in exc.problems]
                return problem(status, exc.code, exc.message, **extra)
        log.error("unmapped error %s", type(exc).__name__)
        return problem(500, "internal", "internal error")

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        # The framework's own refusals (an unreadable body, an unknown path or method), as problems.
        if exc.status_code == 400:
            # FastAPI's 400 is a body it could not decode (not UTF-8): the fault collection calls
            # `malformed_json`, answered the same on every route.
            return problem(422, MalformedJson.code, "the body is not UTF-8 JSON text")
        code = HTTP_CODES.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        response = problem(exc.status_code, code, detail)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            # Not a schema fault: the body is no JSON at all (collection's `malformed_json`).
            return problem(422, MalformedJson.code, "the body is not JSON text")
        errors = [
            {"loc": _named(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        return problem(422, "invalid_input", "the request does not match the schema", errors=errors)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Only the type: messages can carry request data, and logs never carry personal data.
        log.error("unexpected error %s", type(exc).__name__)
        return problem(500, "internal", "internal error")


_NAME = re.compile(r"\[key\]|[A-Za-z_$][A-Za-z0-9_.$-]{0,199}")
_DIGIT_RUN = re.compile(r"[0-9]{6}")


def _named(loc: Sequence[object]) -> list[str | int]:
    """Where a request fails its schema. A mapping's keys are the sender's words (a purpose named
    after an e-mail address, a phone number): one that does not look like a name is not repeated,
    since answers end up in logs of their own (DESIGN invariant 15)."""
    return [
        part
        if isinstance(part, int)
        or (isinstance(part, str) and _NAME.fullmatch(part) and not _DIGIT_RUN.search(part))
        else drift.UNNAMED_FIELD
        for part in loc
    ]
