"""Bounded reading of request bodies: size caps, gzip inflation with a ceiling, strict JSON.

Pure (no web framework): the HTTP shell feeds chunks as they arrive, so an oversize body or a gzip bomb
is refused after at most `limit + 1` inflated bytes, never inflated whole.
"""

from __future__ import annotations

import json
import math
import zlib

from tactful import jsontext
from tactful.config import Limits
from tactful.errors import InvalidInput, PayloadTooLarge

GZIP_ENCODINGS = frozenset({"gzip", "x-gzip"})
IDENTITY_ENCODINGS = frozenset({"", "identity"})


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds {limit} bytes", code="request_too_large")


def check_content_length(header: str | None, *, limit: int) -> None:
    """Refuse a declared length over the limit before reading anything."""
    if header is None:
        return
    try:
        declared = int(header)
    except ValueError as exc:
        raise InvalidInput("Content-Length is not a number", code="malformed_body") from exc
    if declared > limit:
        raise too_large(limit)


class BodyReader:
    """Accumulates a body chunk by chunk; inflates gzip on the fly; stops at `limit` bytes.

    The limit applies both to the bytes on the wire and to the inflated bytes, so a small compressed
    body that expands past the limit costs at most `limit` bytes of memory.
    """

    def __init__(self, *, limit: int, content_encoding: str | None = None) -> None:
        encoding = (content_encoding or "").strip().lower()
        if encoding in GZIP_ENCODINGS:
            self._inflater: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding in IDENTITY_ENCODINGS:
            self._inflater = None
        else:
            raise InvalidInput("Content-Encoding must be gzip or identity", code="unsupported_encoding")
        self._limit = limit
        self._wire = 0
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._wire += len(chunk)
        if self._wire > self._limit:
            raise too_large(self._limit)
        if self._inflater is None:
            self._append(chunk)
            return
        if self._inflater.eof:
            raise InvalidInput("data after the end of the gzip stream", code="malformed_body")
        try:
            # Ask for one byte more than fits: getting it proves the body is too large.
            out = self._inflater.decompress(chunk, self._limit - self._size + 1)
        except zlib.error as exc:
            raise InvalidInput("the body is not valid gzip", code="malformed_body") from exc
        self._append(out)

    def _append(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise too_large(self._limit)
        self._parts.append(data)

    def finish(self) -> bytes:
        if self._inflater is not None:
            if not self._inflater.eof:
                raise InvalidInput("the gzip stream is truncated", code="malformed_body")
            if self._inflater.unused_data:
                raise InvalidInput("data after the end of the gzip stream", code="malformed_body")
        return b"".join(self._parts)


# -- strict JSON ---------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise InvalidInput(f"{name} is not a JSON number", code="non_finite_number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise InvalidInput("a number overflows a double", code="non_finite_number")
    return value


def parse_json(body: bytes, *, limits: Limits) -> object:
    """Decode a UTF-8 JSON body; refuse NaN/Infinity, deep nesting and oversized objects."""
    read, value = jsontext.loads_fast(body)
    if read:
        check_structure(value, max_depth=limits.max_json_depth, max_keys=limits.max_object_keys)
        return value
    # The standard library reads what orjson refused (lone surrogates in escapes, say) and words
    # the error for what neither reads.
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the body is not UTF-8", code="malformed_json") from exc
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise InvalidInput(
            f"JSON nested deeper than {limits.max_json_depth} levels", code="json_too_deep"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", code="malformed_json"
        ) from exc
    except ValueError as exc:  # e.g. integers longer than Python converts
        raise InvalidInput("malformed JSON: a number cannot be read", code="malformed_json") from exc
    check_structure(value, max_depth=limits.max_json_depth, max_keys=limits.max_object_keys)
    return value


_CONTAINERS = (dict, list)


def check_structure(value: object, *, max_depth: int, max_keys: int) -> None:
    """Check nesting depth and keys per object, level by level (no recursion to exhaust)."""
    # Only containers are kept for the next level: scalars, most of a body, are looked at once.
    level: list[object] = [value] if isinstance(value, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            raise InvalidInput(f"JSON nested deeper than {max_depth} levels", code="json_too_deep")
        below: list[object] = []
        for node in level:
            if isinstance(node, dict):
                if len(node) > max_keys:
                    raise InvalidInput(f"a JSON object has more than {max_keys} keys", code="too_many_keys")
                below += [child for child in node.values() if isinstance(child, _CONTAINERS)]
            else:
                assert isinstance(node, list)
                below += [child for child in node if isinstance(child, _CONTAINERS)]
        level = below
