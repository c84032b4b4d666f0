"""JSON text on the ingestion hot path: orjson where it can, the standard library where it cannot.

    value ─ orjson ──────────────── compact UTF-8 bytes (no lone surrogate can be in them)
       └─ refused (lone surrogate, integer past 64 bits, ...) ─▶ the standard library, as before

orjson writes NaN and infinities as `null` where the standard library writes `NaN`; bodies read over
HTTP never hold them (`limits.parse_json` refuses them), so only in-process callers can see the
difference, and then the text is valid JSON. Pure.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
_SORTED = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * 19
"""orjson reads an integer past 64 bits as a float; a body with 19 digits in a row may hold one. The
body's digits mapped to `0` and all else to a space, then one substring search: a regular expression
takes ten times as long on a 100 KB batch."""
_BOM = b"\xef\xbb\xbf"


def compact(value: object) -> bytes | None:
    """Compact UTF-8 JSON of `value`, or None when orjson cannot write it."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return None


def canonical(value: object) -> str:
    """Sorted-key compact JSON text (for fingerprints): the same value always gives the same text."""
    try:
        return orjson.dumps(value, default=str, option=_SORTED).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def dumps(value: object) -> str:
    """JSON text for a stored JSON column (`None` is JSON null, as SQLAlchemy's JSON type writes it)."""
    try:
        return orjson.dumps(value, default=str, option=_OPTIONS).decode()
    except TypeError:
        return json.dumps(value, default=str)


def loads_fast(body: bytes) -> tuple[bool, object]:
    """(True, value) when orjson reads `body` exactly as the standard library would; else (False, None)
    and the caller takes the standard library's path, which also words every error."""
    if body.startswith(_BOM):
        body = body[len(_BOM) :]
    if _LONG_RUN in body.translate(_DIGITS):
        return False, None
    try:
        return True, orjson.loads(body)
    except orjson.JSONDecodeError:
        return False, None


def column_value(value: object) -> object:
    """A stored column's value as exports write it: datetimes in ISO 8601, uuids as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value
