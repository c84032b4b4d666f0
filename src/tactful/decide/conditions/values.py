"""The type rules: what equality and order mean between the values a condition compares.

Values are JSON: null, booleans, numbers, strings, arrays and objects. Values read from a subject
may also be tuples (arrays) and other mappings (objects); anything else is of no kind and never
equals, orders or matches a pattern.

- **Equality is strict about kind.** A number equals a number of the same value (`1` equals `1.0`),
  a string a string with the same characters, a boolean a boolean: `5` never equals `"5"`, `true`
  never equals `1`. Arrays are equal item by item, in order; objects key by key. No coercion ever.
- **Order is within one kind.** `$gt $gte $lt $lte` compare two numbers, or two strings by Unicode
  code point (so `"10" < "9"`, and ISO dates order as dates); anything else does not match.
- **Mismatched kinds never match a test**, so a negated test matches them: `{"$ne": 5}` matches
  `"5"`, and `{"$not": {"$gt": 3}}` matches `"10"`.

Null counts as no value at all (absent), never as a value to compare with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Final, cast


class Kind(IntEnum):
    BOOLEAN = 1
    NUMBER = 2
    STRING = 3
    ARRAY = 4
    OBJECT = 5


class _Absent:
    """The value of an atom or field that has none (missing, or null)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()

_EXACT: Final[Mapping[type, Kind]] = {
    bool: Kind.BOOLEAN,
    int: Kind.NUMBER,
    float: Kind.NUMBER,
    str: Kind.STRING,
    list: Kind.ARRAY,
    tuple: Kind.ARRAY,
    dict: Kind.OBJECT,
}


def kind(value: object) -> Kind | None:
    """The kind of `value`, or None when it has none (absent, null, bytes, a date, ...)."""
    found = _EXACT.get(type(value))
    if found is not None:
        return found
    # Subclasses (a StrEnum, an IntEnum, a read-only mapping) are what they extend; bool first,
    # since it extends int.
    if isinstance(value, bool):
        return Kind.BOOLEAN
    if isinstance(value, int | float):
        return Kind.NUMBER
    if isinstance(value, str):
        return Kind.STRING
    if isinstance(value, list | tuple):
        return Kind.ARRAY
    if isinstance(value, Mapping):
        return Kind.OBJECT
    return None


def equal(value: object, operand: object) -> bool:
    """Whether a subject's `value` equals a condition's `operand` under the rules above.

    Recursion follows the operand, whose depth the caps bound, so a deeply nested value costs no
    more than the operand it is compared with."""
    k = kind(value)
    if k is None or k is not kind(operand):
        return False
    if k is Kind.ARRAY:
        values, items = cast(Sequence[object], value), cast(Sequence[object], operand)
        return len(values) == len(items) and all(equal(v, o) for v, o in zip(values, items, strict=True))
    if k is Kind.OBJECT:
        fields, wanted = cast(Mapping[str, object], value), cast(Mapping[str, object], operand)
        return fields.keys() == wanted.keys() and all(equal(fields[key], wanted[key]) for key in wanted)
    return value == operand


def ordered(value: object, operand: int | float | str) -> int | None:
    """-1, 0 or 1 as `value` sorts before, with or after `operand`; None when they have no common
    order (different kinds, or a NaN)."""
    k = kind(value)
    if k is not kind(operand) or k not in (Kind.NUMBER, Kind.STRING):
        return None
    if value < operand:  # type: ignore[operator]  # same kind, checked above
        return -1
    if value > operand:  # type: ignore[operator]
        return 1
    return 0 if value == operand else None
