"""Bounded body reading and strict JSON: every refusal is a typed InvalidInput, never a crash."""

from __future__ import annotations

import contextlib
import gzip
import json
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.collect.limits import BodyReader, check_content_length, check_structure, parse_json
from tactful.config import Limits
from tactful.errors import InvalidInput, PayloadTooLarge

LIMITS = Limits()


def read(body: bytes, *, limit: int = 4096, encoding: str | None = None, chunk: int = 512) -> bytes:
    reader = BodyReader(limit=limit, content_encoding=encoding)
    for start in range(0, len(body), chunk):
        reader.feed(body[start : start + chunk])
    return reader.finish()


def test_plain_body_under_the_limit_is_returned_whole() -> None:
    assert read(b"x" * 4096) == b"x" * 4096


def test_plain_body_over_the_limit_is_refused() -> None:
    with pytest.raises(PayloadTooLarge):
        read(b"x" * 4097)


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        check_content_length("4097", limit=4096)
    check_content_length("4096", limit=4096)
    check_content_length(None, limit=4096)
    with pytest.raises(InvalidInput):
        check_content_length("lots", limit=4096)


def test_gzip_body_is_inflated() -> None:
    payload = json.dumps({"batch": [{"type": "track"}] * 20}).encode()
    assert read(gzip.compress(payload), encoding="gzip") == payload


def test_gzip_bomb_is_refused_without_inflating_it_whole() -> None:
    limit = 500 * 1024
    bomb = gzip.compress(b"0" * (200 * 1024 * 1024), compresslevel=9)  # 200 MiB in about 200 KiB
    assert len(bomb) < limit
    tracemalloc.start()
    try:
        with pytest.raises(PayloadTooLarge):
            read(bomb, limit=limit, encoding="gzip", chunk=64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * limit, f"peak {peak} bytes: the bomb was inflated far past the limit"


@pytest.mark.parametrize("body", [b"not gzip at all", gzip.compress(b"{}")[:-6]])
def test_broken_gzip_is_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput) as raised:
        read(body, encoding="gzip")
    assert raised.value.code == "malformed_body"


def test_unknown_content_encoding_is_refused() -> None:
    with pytest.raises(InvalidInput) as raised:
        BodyReader(limit=10, content_encoding="br")
    assert raised.value.code == "unsupported_encoding"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", "malformed_json"),
        (b"", "malformed_json"),
        (b"\xff\xfe{}", "malformed_json"),
        (b'{"a": NaN}', "non_finite_number"),
        (b'{"a": Infinity}', "non_finite_number"),
        (b'{"a": -Infinity}', "non_finite_number"),
        (b'{"a": 1e999}', "non_finite_number"),
        (b"[" * 1000 + b"]" * 1000, "json_too_deep"),
        (b'{"a":' * 1000 + b"1" + b"}" * 1000, "json_too_deep"),
        (b"[" * 100_000, "json_too_deep"),
        (b"[" * 33 + b"]" * 33, "json_too_deep"),
        (json.dumps({f"k{i}": i for i in range(501)}).encode(), "too_many_keys"),
        (b"1" * 5000, "malformed_json"),
    ],
)
def test_hostile_json_is_refused_with_a_code(body: bytes, code: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_json(body, limits=LIMITS)
    assert raised.value.code == code


def test_depth_at_the_limit_is_accepted() -> None:
    assert parse_json(b"[" * 32 + b"]" * 32, limits=LIMITS) is not None
    assert parse_json(b"\xef\xbb\xbf{}", limits=LIMITS) == {}


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _most_keys(value: object) -> int:
    if isinstance(value, dict):
        return max([len(value), *map(_most_keys, value.values())])
    if isinstance(value, list):
        return max(map(_most_keys, value), default=0)
    return 0


_trees = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=40,
)


@given(_trees, st.integers(min_value=1, max_value=6), st.integers(min_value=0, max_value=4))
def test_structure_is_refused_exactly_when_too_deep_or_too_wide(
    value: object, max_depth: int, max_keys: int
) -> None:
    deep, wide = _depth(value) > max_depth, _most_keys(value) > max_keys
    if not (deep or wide):
        check_structure(value, max_depth=max_depth, max_keys=max_keys)
        return
    with pytest.raises(InvalidInput) as raised:
        check_structure(value, max_depth=max_depth, max_keys=max_keys)
    assert raised.value.code in ({"json_too_deep"} if deep else set()) | (
        {"too_many_keys"} if wide else set()
    )


@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_invalid_input(body: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        parse_json(body, limits=LIMITS)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_gzip_read_or_raise_invalid_input(body: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        read(body, encoding="gzip", chunk=7)
