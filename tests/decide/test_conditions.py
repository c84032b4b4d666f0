"""The condition language's specification: every case in tests/cases/conditions.json, one test each,
and what the cases cannot say (values JSON cannot hold, the catalog's naming rule, purity)."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tactful.catalog.loader import load_catalog
from tactful.catalog.model import SOURCE_PREFIX
from tactful.decide import conditions
from tactful.decide.conditions import Caps, Compiled, Match, ProblemCode, Problems
from tests.catalog.builders import DEMO_PATH
from tests.decide.builders import view_of

SPEC = json.loads((Path(__file__).parents[1] / "cases" / "conditions.json").read_text(encoding="utf-8"))
SOURCE = Path(conditions.__file__).parent


def compiled(document: object, caps: Caps | None = None) -> Compiled:
    result = conditions.compile(document, caps or Caps())
    assert isinstance(result, Compiled), str(result)
    return result


def refused(document: object, caps: Caps | None = None) -> Problems:
    result = conditions.compile(document, caps or Caps())
    assert isinstance(result, Problems), f"compiled: {result}"
    return result


@pytest.mark.parametrize("case", SPEC["evaluate"], ids=lambda c: c["name"])
def test_evaluate(case: Mapping[str, Any]) -> None:
    condition = compiled(case["condition"])
    withheld = case.get("withheld", {})
    view = view_of(case["attributes"], withheld=withheld, permitted=condition.atoms)
    outcome = condition.evaluate(view)
    assert outcome.match == Match(case["expected"])
    assert outcome.matched is (outcome.match is Match.MATCH)
    assert outcome.atoms_read <= condition.atoms
    assert view.atoms_read <= outcome.atoms_read
    if outcome.match is Match.WITHHELD:
        assert outcome.withheld in withheld
        assert not view.atoms_read & withheld.keys()
    else:
        assert outcome.withheld is None
        assert outcome.atoms_read == condition.atoms
    # The same answer from a plain mapping, where a missing key is an absent atom.
    if not withheld:
        assert condition.evaluate(dict(case["attributes"])).match == outcome.match


@pytest.mark.parametrize("case", SPEC["problems"], ids=lambda c: c["name"])
def test_problems(case: Mapping[str, Any]) -> None:
    problems = refused(case["condition"], Caps(**case.get("caps", {})))
    assert [[p.code, p.pointer] for p in problems.items] == case["problems"]
    for problem in problems.items:
        assert problem.message
        assert str(problem).startswith(problem.pointer or "/")


@pytest.mark.parametrize("case", SPEC["atoms"], ids=lambda c: c["name"])
def test_atoms(case: Mapping[str, Any]) -> None:
    assert sorted(compiled(case["condition"]).atoms) == case["atoms"]


def test_spec_covers_every_operator_and_problem_code() -> None:
    text = json.dumps(SPEC)
    for operator in conditions.VALUE_OPERATORS | conditions.LOGICAL:
        assert f'"{operator}"' in text, operator
    named = {code for case in SPEC["problems"] for code, _ in case["problems"]}
    assert named == {str(code) for code in ProblemCode}
    assert {c["expected"] for c in SPEC["evaluate"]} == {str(m) for m in Match}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_numbers_must_be_finite(bad: float) -> None:
    for document in (
        {"computed.lifetime_value": bad},
        {"computed.lifetime_value": {"$gt": bad}},
        {"computed.lifetime_value": {"$in": [1, bad]}},
    ):
        assert refused(document).codes == {ProblemCode.OPERAND_TYPE}


@pytest.mark.parametrize(
    "document",
    [
        {1: "SE"},
        {"traits.country": {"$eq": {1: "x"}}},
        {"traits.country": b"SE"},
        {"traits.country": {"$in": [{"SE"}]}},
        {"traits.country": {"$eq": ("SE",)}},
    ],
)
def test_values_json_cannot_hold_are_refused(document: object) -> None:
    assert refused(document).codes <= {ProblemCode.BAD_KEY, ProblemCode.OPERAND_TYPE}


def test_a_compiled_condition_ignores_later_changes_to_its_document() -> None:
    document: dict[str, Any] = {
        "traits.country": {"$in": ["SE"]},
        "traits.tags": {"$all": [["a"]], "$ne": {"b": [1]}},
        "computed.pair": {"$eq": [1, {"x": 2}]},
    }
    condition = compiled(document)
    subject = {"traits.country": "NO", "traits.tags": [["a", "z"]], "computed.pair": [1, {"x": 3}]}
    assert not condition.matches(subject)
    document["traits.country"]["$in"].append("NO")
    document["traits.tags"]["$all"][0].append("z")
    document["traits.tags"]["$ne"]["b"] = [2]
    document["computed.pair"]["$eq"][1]["x"] = 3
    document["traits.city"] = "Oslo"
    assert condition.atoms == {"traits.country", "traits.tags", "computed.pair"}
    assert not condition.matches(subject)
    assert compiled(document).matches({**subject, "traits.city": "Oslo"})


def test_values_of_no_json_kind_never_match() -> None:
    condition = compiled({"traits.created_at": {"$exists": True, "$ne": "x", "$nin": ["x"]}})
    assert condition.matches({"traits.created_at": b"2026"})
    for document in (
        {"traits.created_at": "2026"},
        {"traits.created_at": {"$gte": "2026"}},
        {"traits.created_at": {"$regex": "2026"}},
        {"traits.created_at": {"$in": ["2026"]}},
    ):
        assert not compiled(document).matches({"traits.created_at": b"2026"})


def test_subclasses_count_as_their_kind() -> None:
    from tactful.types import Level

    assert compiled({"traits.level": "1:few"}).matches({"traits.level": Level.FEW})
    assert compiled({"traits.levels": {"$elemMatch": {"$eq": "1:1"}}}).matches(
        {"traits.levels": (Level.ONE,)}
    )


def test_an_outcome_names_the_withheld_atom_and_what_was_read_before_it() -> None:
    condition = compiled({"context.location.country": "SE", "traits.first_name": "Ada", "traits.zip": "1"})
    view = view_of(
        {"context.location.country": "SE"}, withheld={"traits.first_name": "Ada"}, permitted=condition.atoms
    )
    outcome = condition.evaluate(view)
    assert outcome.match is Match.WITHHELD
    assert not outcome.matched
    assert outcome.withheld == "traits.first_name"
    assert outcome.atoms_read == {"context.location.country"}
    assert view.atoms_read == {"context.location.country"}


def test_atom_names_follow_the_catalogs_rule() -> None:
    catalog = load_catalog(DEMO_PATH)
    assert all(conditions.ATOM_NAME.fullmatch(name) for name in catalog.atoms)
    prefixes = conditions.ATOM_NAME.pattern.partition(")")[0].lstrip("(").split("|")
    assert set(prefixes) == set(SOURCE_PREFIX)


def test_the_language_is_never_evaluated_as_code() -> None:
    forbidden = {"eval", "exec", "compile", "__import__", "getattr", "globals", "locals"}
    for path in SOURCE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
        called = {func.id for func in calls if isinstance(func, ast.Name)}
        # Only calls by bare name: `re2.compile` is an attribute, and the package's own `compile`
        # is defined here, never called.
        assert not (called & forbidden), (path.name, called & forbidden)
        imports = [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]
        imported = {getattr(node, "module", None) or alias.name for node in imports for alias in node.names}
        assert not imported & {"jinja2", "pickle", "marshal", "importlib"}


def test_a_lone_surrogate_is_no_trouble() -> None:
    # JSON can carry "\ud800", which no UTF-8 encoder takes: a pattern holding one is a problem,
    # a value holding one is searched as its bytes.
    assert refused({"traits.first_name": {"$regex": "\ud800"}}).codes == {ProblemCode.BAD_REGEX}
    condition = compiled({"traits.first_name": {"$regex": "^A"}})
    assert condition.matches({"traits.first_name": "A\ud800"})
    assert not condition.matches({"traits.first_name": "\ud800A"})
