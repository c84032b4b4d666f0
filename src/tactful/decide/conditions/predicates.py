"""The small functions a compiled condition is made of: each tests one value, or one record (the
atoms read from a view, or an array element's fields), and closes over what compiling found."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, cast

from tactful.decide.conditions.compiled import Test
from tactful.decide.conditions.values import ABSENT, Kind, equal, kind

ValueTest = Callable[[object], bool]
"""A test of one value (`ABSENT` when there is none)."""


def never(_: object) -> bool:
    return False


class Members:
    """The values of `$in`, by kind, so that `true` is never found among numbers (`True == 1` in
    Python) and a lookup is one hash."""

    __slots__ = ("_by_kind",)

    def __init__(self, items: Sequence[object]) -> None:
        by_kind: dict[Kind | None, set[object]] = {k: set() for k in (Kind.BOOLEAN, Kind.NUMBER, Kind.STRING)}
        for item in items:
            by_kind[kind(item)].add(item)
        self._by_kind = by_kind

    def test(self, value: object) -> bool:
        k = kind(value)
        if k is Kind.ARRAY:
            return any(self.test(v) for v in cast(Sequence[object], value) if kind(v) is not Kind.ARRAY)
        members = self._by_kind.get(k)
        return members is not None and value in members


def frozen(literal: object) -> object:
    """A copy of a checked literal that later changes to the document cannot reach."""
    if isinstance(literal, list):
        return tuple(frozen(item) for item in literal)
    if isinstance(literal, dict):
        return MappingProxyType({key: frozen(item) for key, item in literal.items()})
    return literal


def equals(operand: object) -> ValueTest:
    wanted = kind(operand)
    if wanted in (Kind.ARRAY, Kind.OBJECT):
        return lambda value: equal(value, operand)
    exact = type(operand)
    # `==` first: it is false for most values, and `type(...) is` spares `kind` for the rest
    # (True == 1 in Python, and 1 == 1.0, so the kind still decides).
    return lambda value: value == operand and (type(value) is exact or kind(value) is wanted)


def field(name: str, test: ValueTest) -> Test:
    def check(record: Mapping[str, object]) -> bool:
        value = record.get(name, ABSENT)
        return test(ABSENT if value is None else value)

    return check


def negated(test: Test) -> Test:
    return lambda record: not test(record)


def negated_value(test: ValueTest) -> ValueTest:
    return lambda value: not test(value)


def all_of(tests: Sequence[Test]) -> Test:
    return cast(Test, every(tests))


def any_of(tests: Sequence[Test]) -> Test:
    return cast(Test, some(tests))


def all_values(tests: Sequence[ValueTest]) -> ValueTest:
    return cast(ValueTest, every(tests))


def every(tests: Sequence[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """All of `tests`, in order, stopping at the first that fails (unrolled for the usual few)."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda x: a(x) and b(x)
    if len(tests) == 3:
        a, b, c = tests
        return lambda x: a(x) and b(x) and c(x)
    found = tuple(tests)

    return lambda x: all(test(x) for test in found)


def some(tests: Sequence[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """Any of `tests`, in order, stopping at the first that holds."""
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda x: a(x) or b(x)
    found = tuple(tests)

    return lambda x: any(test(x) for test in found)
