"""Properties of the condition language over random documents and subjects: evaluation never
raises, a withheld atom never yields a match, static analysis finds every atom evaluation reads,
and the caps hold."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful.decide import conditions
from tactful.decide.conditions import Caps, Compiled, Match, ProblemCode, Problems
from tests.decide.builders import view_of
from tests.decide.strategies import (
    ATOMS,
    Subject,
    json_anything,
    measure,
    subject_values,
    subjects,
)
from tests.decide.strategies import (
    conditions as documents,
)

ROOMY = Caps(max_nodes=100_000, max_depth=100, max_list=100)
"""Caps no generated valid document reaches, so that validity alone decides."""


def compiled(document: object, caps: Caps = ROOMY) -> Compiled:
    result = conditions.compile(document, caps)
    assert isinstance(result, Compiled), f"{document!r}: {result}"
    return result


class Spy(Mapping[str, object]):
    """A mapping that records every key asked for."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.values = values
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> object:
        self.asked.add(key)
        return self.values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


@given(documents(), subjects())
def test_evaluation_never_raises_and_a_withheld_atom_never_matches(document: Any, subject: Subject) -> None:
    condition = compiled(document)
    view = view_of(subject.values, withheld=subject.withheld, permitted=ATOMS)
    outcome = condition.evaluate(view)
    names_withheld = bool(condition.atoms & subject.withheld.keys())
    assert (outcome.match is Match.WITHHELD) is names_withheld
    if names_withheld:
        assert not outcome.matched
        assert outcome.withheld in subject.withheld
    negated = compiled({"$not": document}).evaluate(
        view_of(subject.values, withheld=subject.withheld, permitted=ATOMS)
    )
    if names_withheld:
        assert negated.match is Match.WITHHELD
    else:
        assert negated.matched is not outcome.matched


@given(
    documents(),
    subjects(),
    st.dictionaries(st.sampled_from(["traits.other", "computed.other"]), subject_values),
)
def test_static_analysis_finds_every_atom_evaluation_reads(
    document: Any, subject: Subject, unnamed: Mapping[str, object]
) -> None:
    condition = compiled(document)
    spy = Spy({**subject.values, **unnamed})
    outcome = condition.evaluate(spy)
    assert spy.asked <= condition.atoms
    assert outcome.atoms_read <= condition.atoms
    view = view_of(subject.values, withheld=subject.withheld, permitted=ATOMS)
    assert condition.evaluate(view).atoms_read <= condition.atoms
    assert view.atoms_read <= condition.atoms
    # Atoms the condition does not name change nothing, whatever they hold or withhold.
    assert condition.evaluate(Spy(subject.values)).match is outcome.match


@given(documents())
def test_every_value_of_a_valid_document_is_counted_and_capped(document: Any) -> None:
    nodes, depth, longest = measure(document)
    assert compiled(document).nodes == nodes
    exact = Caps(max_nodes=nodes, max_depth=depth, max_list=max(longest, 1))
    assert compiled(document, exact).nodes == nodes
    assert _codes(document, Caps(max_nodes=nodes - 1, max_depth=depth)) == {ProblemCode.TOO_MANY_NODES}
    assert _codes(document, Caps(max_nodes=nodes, max_depth=depth - 1)) == {ProblemCode.TOO_DEEP}
    if longest > 1:
        assert ProblemCode.LIST_TOO_LONG in _codes(document, Caps(max_list=longest - 1))


@given(json_anything, st.integers(1, 40), st.integers(1, 8), st.integers(1, 4))
def test_any_document_over_the_caps_is_refused_and_compiling_never_raises(
    document: Any, max_nodes: int, max_depth: int, max_list: int
) -> None:
    caps = Caps(max_nodes=max_nodes, max_depth=max_depth, max_list=max_list, max_problems=5)
    result = conditions.compile(document, caps)
    nodes, depth, longest = measure(document)
    if nodes > max_nodes or depth > max_depth or longest > max_list:
        assert isinstance(result, Problems)
    if isinstance(result, Problems):
        assert 1 <= len(result.items) <= caps.max_problems + 1
        assert all(p.message for p in result.items)
    else:
        assert result.nodes == nodes


@given(st.text(st.characters(codec=None, exclude_categories=()), max_size=30))
def test_any_pattern_compiles_or_is_a_problem(pattern: str) -> None:
    result = conditions.compile({"traits.first_name": {"$regex": pattern}})
    if isinstance(result, Problems):
        assert result.codes <= {ProblemCode.BAD_REGEX, ProblemCode.REGEX_TOO_COMPLEX}
    else:
        assert isinstance(result.matches({"traits.first_name": pattern}), bool)


def _codes(document: object, caps: Caps) -> frozenset[ProblemCode]:
    result = conditions.compile(document, caps)
    assert isinstance(result, Problems), f"compiled under {caps}"
    return result.codes
