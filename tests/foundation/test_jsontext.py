"""The orjson fast paths read and write exactly what the standard library does, or step aside."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful import jsontext
from tactful.collect.limits import parse_json
from tactful.collect.validate import encoded_size
from tactful.config import Limits

LIMITS = Limits()

scalars = (
    st.none()
    | st.booleans()
    | st.integers()  # past 64 bits too: orjson would read those as floats
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)  # lone surrogates included
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=25,
)


def same(a: object, b: object) -> bool:
    """Equal, with the same types all the way down (1 and 1.0 differ; -0.0 and 0.0 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        assert isinstance(b, float)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b


def refused_by_orjson(value: object) -> bool:
    """A lone surrogate somewhere, or an integer outside 64 bits."""
    if isinstance(value, str):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in value)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**64
    if isinstance(value, dict):
        return any(refused_by_orjson(k) or refused_by_orjson(v) for k, v in value.items())
    if isinstance(value, list):
        return any(refused_by_orjson(v) for v in value)
    return False


@given(values, st.booleans())
def test_a_body_reads_as_the_standard_library_reads_it(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return  # a raw lone surrogate is not UTF-8: refused either way (tested in test_limits)
    assert same(parse_json(body, limits=LIMITS), expected)


@given(st.binary(max_size=200) | values.map(lambda v: json.dumps(v).encode()[:-1] + b"1" * 20))
def test_the_fast_reader_never_reads_what_the_standard_library_reads_otherwise(body: bytes) -> None:
    read, value = jsontext.loads_fast(body)
    if read:
        assert same(value, json.loads(body.decode("utf-8-sig")))


@given(values)
def test_compact_text_is_the_value_and_its_size_is_the_utf8_size(value: Any) -> None:
    data = jsontext.compact(value)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if data is None:
        assert refused_by_orjson(value)
        return
    assert same(json.loads(data), json.loads(text))
    assert encoded_size(value) == len(data)


def test_what_orjson_refuses_is_written_by_the_standard_library() -> None:
    big = {"n": 2**80, "s": "\ud800"}
    assert jsontext.compact(big) is None
    assert json.loads(jsontext.dumps({"n": 2**80})) == {"n": 2**80}
    assert jsontext.canonical({"b": 2**80, "a": 1}) == '{"a":1,"b":1208925819614629174706176}'
    assert jsontext.canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert jsontext.dumps(None) == "null"


def test_canonical_text_ignores_key_order() -> None:
    assert jsontext.canonical({"a": {"y": 1, "x": [2]}, "b": None}) == jsontext.canonical(
        {"b": None, "a": {"x": [2], "y": 1}}
    )
