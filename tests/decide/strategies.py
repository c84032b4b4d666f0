"""Hypothesis strategies for the condition language: valid documents drawn from its grammar, any
JSON at all, and subjects whose atoms are present, absent or withheld."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

ATOMS = (
    "context.location.country",
    "traits.first_name",
    "traits.tags",
    "events.product_viewed",
    "computed.score",
)
FIELDS = ("category", "price", "tags")
OPERATORS = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$not",
    "$elemMatch", "$size", "$all",
)  # fmt: skip

strings = st.sampled_from(["", "a", "b", "SE", "10", "9", "running", "Åsa", "\ud800"])
numbers = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0, 10**20]))
scalars = st.one_of(st.booleans(), numbers, strings)
literals = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(FIELDS), inner, max_size=2)
    ),
    max_leaves=5,
)
patterns = st.sampled_from(["", "^a", "(?i)se", "1$", "[0-9]+", "run|hik", "\\p{Lu}"])


@st.composite
def values(draw: st.DrawFn, depth: int) -> Any:
    """What stands under an atom or field name: a scalar, or an object of value operators."""
    if depth <= 0 or draw(st.booleans()):
        return draw(scalars)
    chosen = draw(st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=2, unique=True))
    return {op: draw(operand(op, depth - 1)) for op in chosen}


def operand(op: str, depth: int) -> st.SearchStrategy[Any]:
    if op in ("$eq", "$ne"):
        return literals
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return st.one_of(numbers, strings)
    if op in ("$in", "$nin"):
        return st.lists(scalars, min_size=1, max_size=4)
    if op == "$exists":
        return st.booleans()
    if op == "$regex":
        return patterns
    if op == "$not":
        return values(depth)
    if op == "$size":
        return st.one_of(st.integers(0, 3), operators_only(depth))
    if op == "$all":
        return st.lists(literals, min_size=1, max_size=3)
    assert op == "$elemMatch"
    return st.one_of(operators_only(depth), conditions(depth, keys=FIELDS).filter(bool))


@st.composite
def operators_only(draw: st.DrawFn, depth: int) -> Any:
    """An object of value operators (for `$size` and value-`$elemMatch`)."""
    chosen = draw(st.lists(st.sampled_from(OPERATORS), min_size=1, max_size=2, unique=True))
    return {op: draw(operand(op, depth - 1)) for op in chosen}


@st.composite
def conditions(draw: st.DrawFn, depth: int = 3, keys: tuple[str, ...] = ATOMS) -> Any:
    """A valid condition over `keys` (atom names, or an element's field names)."""
    shape = draw(st.integers(0, 3)) if depth > 0 else 0
    if shape == 0:
        names = draw(st.lists(st.sampled_from(keys), max_size=3, unique=True))
        return {name: draw(values(depth)) for name in names}
    if shape == 3:
        return {"$not": draw(conditions(depth - 1, keys))}
    op = "$and" if shape == 1 else "$or"
    found: dict[str, Any] = {op: draw(st.lists(conditions(depth - 1, keys), min_size=1, max_size=3))}
    if draw(st.booleans()):
        found.update(draw(conditions(0, keys)))
    return found


json_anything = st.recursive(
    st.one_of(st.none(), scalars, st.sampled_from(list(ATOMS) + list(OPERATORS) + ["$and", "$or", "$x"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(ATOMS + OPERATORS + ("$and", "$or", "$where", "x")), st.text(max_size=3)
            ),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=30,
)
"""Any JSON document at all, rich in names and operators the language knows."""

subject_values = st.recursive(
    st.one_of(st.none(), scalars, st.floats(), st.binary(max_size=2)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(FIELDS), inner, max_size=3),
    ),
    max_leaves=12,
)
"""What a subject's atom may hold, including what JSON cannot (NaN, bytes, tuples)."""


@dataclass(frozen=True)
class Subject:
    values: Mapping[str, object]
    """Permitted atoms with a value (None included)."""
    withheld: Mapping[str, object]
    """Atoms the Allowance refuses, with what the store holds for them."""


@st.composite
def subjects(draw: st.DrawFn) -> Subject:
    state = {atom: draw(st.sampled_from(("present", "absent", "withheld"))) for atom in ATOMS}
    return Subject(
        values={a: draw(subject_values) for a, s in state.items() if s == "present"},
        withheld={a: draw(subject_values) for a, s in state.items() if s == "withheld"},
    )


def measure(document: object, depth: int = 1) -> tuple[int, int, int]:
    """Values, depth and longest list of a JSON document, counted independently of the compiler."""
    if isinstance(document, dict):
        inner = [measure(v, depth + 1) for v in document.values()]
    elif isinstance(document, list):
        inner = [measure(v, depth + 1) for v in document]
    else:
        return 1, depth, 0
    longest = len(document) if isinstance(document, list) else 0
    return (
        1 + sum(n for n, _, _ in inner),
        max([depth, *(d for _, d, _ in inner)]),
        max([longest, *(w for _, _, w in inner)]),
    )
