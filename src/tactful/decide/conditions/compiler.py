"""Compiling a condition document: check it against the grammar and the caps, and turn it into a
tree of small functions, so that evaluating it many times never re-reads the document.

Each check that fails adds a problem and compiling goes on, so that one answer lists every fault
(up to `Caps.max_problems`); a cap on size or depth stops it at once, since a document that large
is not worth reading further.
"""

from __future__ import annotations

import contextlib
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, cast

import re2

from tactful.decide.conditions.caps import DEFAULT_CAPS, Caps
from tactful.decide.conditions.compiled import Compiled, Test
from tactful.decide.conditions.predicates import (
    Members,
    ValueTest,
    all_of,
    all_values,
    any_of,
    equals,
    field,
    frozen,
    negated,
    negated_value,
    never,
)
from tactful.decide.conditions.problems import Problem, ProblemCode, Problems
from tactful.decide.conditions.values import ABSENT, Kind, equal, kind

Path = tuple[str | int, ...]

LOGICAL: Final = frozenset({"$and", "$or", "$not"})
"""Operators that combine conditions: where an atom name may stand."""
VALUE_OPERATORS: Final = frozenset(
    {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex", "$not",
     "$elemMatch", "$size", "$all"}
)  # fmt: skip
"""Operators that test a value: under an atom name (or a field name inside `$elemMatch`)."""

ATOM_NAME: Final = re.compile(r"(context|traits|events|computed|session)(\.[A-Za-z_][A-Za-z0-9_]*)+")
"""The catalog's rule for atom names (a test holds the two together)."""

_ORDER: Final[Mapping[str, Callable[[Any, Any], bool]]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}  # fmt: skip
_KNOWN = ", ".join(sorted(LOGICAL | VALUE_OPERATORS))


class _Stop(Exception):
    """Compiling cannot usefully go on: a cap on size, depth or problems was reached."""


def compile(document: object, caps: Caps = DEFAULT_CAPS) -> Compiled | Problems:
    """Check `document` (parsed JSON) and compile it, or say everything wrong with it."""
    compiler = _Compiler(caps)
    test: Test = never
    with contextlib.suppress(_Stop):
        test = compiler.condition(document, (), 1, fields=False)
    if compiler.problems:
        return Problems(tuple(compiler.problems))
    atoms = frozenset(compiler.atoms)
    return Compiled(atoms=atoms, nodes=compiler.nodes, _order=tuple(sorted(atoms)), _test=test)


class _Compiler:
    def __init__(self, caps: Caps) -> None:
        self.caps = caps
        self.problems: list[Problem] = []
        self.nodes = 0
        self.atoms: set[str] = set()
        self.regex_options = re2.Options()
        self.regex_options.never_capture = True
        self.regex_options.log_errors = False
        self.regex_options.max_mem = caps.regex_max_mem
        self.value_operators: Mapping[str, Callable[[object, Path, int], ValueTest]] = {
            "$eq": self.eq, "$ne": self.ne, "$gt": self.order, "$gte": self.order, "$lt": self.order,
            "$lte": self.order, "$in": self.in_, "$nin": self.nin, "$exists": self.exists,
            "$regex": self.regex, "$not": self.not_, "$elemMatch": self.elem_match, "$size": self.size,
            "$all": self.all_,
        }  # fmt: skip

    # -- bookkeeping ------------------------------------------------------------------------------

    def problem(self, code: ProblemCode, path: Path, message: str) -> None:
        if len(self.problems) >= self.caps.max_problems:
            self.problems.append(
                Problem(ProblemCode.TOO_MANY_PROBLEMS, path, "more problems follow; fix these first")
            )
            raise _Stop
        self.problems.append(Problem(code, path, message))

    def visit(self, path: Path, depth: int) -> None:
        """Count one JSON value of the document, at `depth` (the document is depth 1)."""
        self.nodes += 1
        if self.nodes > self.caps.max_nodes:
            self.problems.append(Problem(ProblemCode.TOO_MANY_NODES, path, (
                f"the condition is too large: at most {self.caps.max_nodes} values in all; "
                "split it into audiences, or use $in with a shorter list"
            )))  # fmt: skip
            raise _Stop
        if depth > self.caps.max_depth:
            self.problems.append(Problem(ProblemCode.TOO_DEEP, path, (
                f"the condition nests too deep: at most {self.caps.max_depth} levels; "
                "flatten nested $and/$or"
            )))  # fmt: skip
            raise _Stop

    # -- conditions -------------------------------------------------------------------------------

    def condition(self, document: object, path: Path, depth: int, *, fields: bool) -> Test:
        """A condition: an object of atom names (or, with `fields`, an element's field names) and
        logical operators, all of which must hold."""
        self.visit(path, depth)
        if not isinstance(document, dict):
            where = "an element's fields" if fields else "atom names"
            self.problem(ProblemCode.NOT_AN_OBJECT, path, (
                f"a condition is an object of {where} and their tests, "
                'such as {"context.location.country": "SE"}'
            ))  # fmt: skip
            return never
        tests: list[Test] = []
        for key, operand in document.items():
            if not isinstance(key, str):
                self.problem(ProblemCode.BAD_KEY, (*path, str(key)), "names are strings")
                continue
            at = (*path, key)
            named = self.key(key, at, fields=fields)
            if key in ("$and", "$or"):
                tests.append(self.logical(key, operand, at, depth + 1, fields=fields))
            elif key == "$not":
                tests.append(negated(self.condition(operand, at, depth + 1, fields=fields)))
            elif not named:
                self.value(operand, at, depth + 1)  # for the problems it may hold
            elif key.startswith("$"):
                if key in VALUE_OPERATORS:
                    self.problem(ProblemCode.OPERATOR_OUT_OF_PLACE, at, (
                        f"{key} tests a value: put it under an atom name, "
                        f'such as {{"context.device.type": {{"{key}": ...}}}}'
                    ))  # fmt: skip
                else:
                    self.unknown(key, at)
            else:
                if not fields:
                    self.atoms.add(key)
                tests.append(field(key, self.value(operand, at, depth + 1)))
        return all_of(tests)

    def key(self, key: str, path: Path, *, fields: bool) -> bool:
        """Whether `key` may stand in a condition (operators are checked by the caller)."""
        if len(key) > self.caps.max_key:
            self.problem(ProblemCode.KEY_TOO_LONG, path, f"names are at most {self.caps.max_key} characters")
            return False
        if key.startswith("$"):
            return True
        if fields:
            if key:
                return True
            self.problem(ProblemCode.BAD_KEY, path, "a field name cannot be empty")
            return False
        if ATOM_NAME.fullmatch(key):
            return True
        self.problem(ProblemCode.BAD_KEY, path, (
            f"{key!r} is not an atom name: atom names are those of the catalog and start with "
            "context., traits., events., computed. or session. (fields of an array's elements are tested "
            "with $elemMatch)"
        ))  # fmt: skip
        return False

    def logical(self, key: str, operand: object, path: Path, depth: int, *, fields: bool) -> Test:
        items = self.items(key, operand, path, depth, what="conditions")
        tests = [self.condition(item, (*path, i), depth + 1, fields=fields) for i, item in enumerate(items)]
        return all_of(tests) if key == "$and" else any_of(tests)

    def items(self, key: str, operand: object, path: Path, depth: int, *, what: str) -> Sequence[object]:
        """The items of a list operand, if it is a non-empty list within the cap (else none)."""
        self.visit(path, depth)
        if not isinstance(operand, list):
            self.problem(ProblemCode.OPERAND_TYPE, path, f"{key} takes a list of {what}")
            return ()
        if not operand:
            self.problem(ProblemCode.EMPTY, path, f"{key} needs at least one of its {what}")
            return ()
        if len(operand) > self.caps.max_list:
            self.problem(ProblemCode.LIST_TOO_LONG, path, f"{key} takes at most {self.caps.max_list} {what}")
            return ()
        return operand

    def unknown(self, key: str, path: Path) -> None:
        hint = "; for a case-insensitive pattern start it with (?i)" if key == "$options" else ""
        message = f"{key} is not an operator here: the operators are {_KNOWN}{hint}"
        self.problem(ProblemCode.UNKNOWN_OPERATOR, path, message)

    # -- values -----------------------------------------------------------------------------------

    def value(self, operand: object, path: Path, depth: int) -> ValueTest:
        """What stands under an atom or field name (or `$not`): a value it must equal, or an object
        of value operators that must all hold."""
        if isinstance(operand, dict):
            self.visit(path, depth)
            dollars = sum(1 for k in operand if isinstance(k, str) and k.startswith("$"))
            if operand and dollars == len(operand):
                return self.operators(operand, path, depth)
            if not operand:
                self.problem(ProblemCode.EMPTY, path, 'give a test, such as {"$exists": true}')
            elif dollars:
                self.problem(ProblemCode.MIXED_OPERATORS, path, (
                    "an object holds either operators ($...) or field names, never both; "
                    "to test an array's elements by their fields, use $elemMatch"
                ))  # fmt: skip
            else:
                self.problem(ProblemCode.LITERAL_OBJECT, path, (
                    "to test the fields of an array's elements use $elemMatch; "
                    'to compare with a whole object use {"$eq": {...}}'
                ))  # fmt: skip
            return never
        if isinstance(operand, list):
            self.visit(path, depth)
            self.problem(ProblemCode.LITERAL_ARRAY, path, (
                'to match any of several values use {"$in": [...]}; '
                'to compare with a whole array use {"$eq": [...]}'
            ))  # fmt: skip
            return never
        if not self.scalar(operand, path, depth):
            return never
        return equals(operand)

    def operators(self, tests: Mapping[str, object], path: Path, depth: int) -> ValueTest:
        found: list[ValueTest] = []
        for op, operand in tests.items():
            at = (*path, op)
            make = self.value_operators.get(op)
            if make is not None:
                found.append(make(operand, at, depth + 1))
            elif op in LOGICAL:
                self.problem(ProblemCode.OPERATOR_OUT_OF_PLACE, at, (
                    f"{op} combines conditions: put it where atom names stand, "
                    f'such as {{"{op}": [{{"traits.country": "SE"}}, ...]}}'
                ))  # fmt: skip
            else:
                self.unknown(op, at)
        return all_values(found)

    def scalar(self, operand: object, path: Path, depth: int, *, what: str = "a value") -> bool:
        """Whether `operand` is a string, number or boolean within the caps."""
        self.visit(path, depth)
        if operand is None:
            self.problem(ProblemCode.NULL_VALUE, path, (
                'null is no value to compare with: test absence with {"$exists": false}'
            ))  # fmt: skip
            return False
        if isinstance(operand, str):
            if len(operand) <= self.caps.max_string:
                return True
            limit = self.caps.max_string
            self.problem(ProblemCode.STRING_TOO_LONG, path, f"strings are at most {limit} characters")
            return False
        if isinstance(operand, float) and not math.isfinite(operand):
            self.problem(ProblemCode.OPERAND_TYPE, path, "numbers must be finite")
            return False
        if isinstance(operand, bool | int | float):
            return True
        self.problem(ProblemCode.OPERAND_TYPE, path, f"expected {what}: a string, a number or true/false")
        return False

    def literal(self, operand: object, path: Path, depth: int) -> bool:
        """Whether `operand` is a JSON value within the caps (for `$eq`, `$ne` and `$all`)."""
        if isinstance(operand, list):
            self.visit(path, depth)
            if len(operand) > self.caps.max_list:
                limit = self.caps.max_list
                self.problem(ProblemCode.LIST_TOO_LONG, path, f"arrays hold at most {limit} items")
                return False
            oks = [self.literal(item, (*path, i), depth + 1) for i, item in enumerate(operand)]
            return all(oks)  # every item checked, so that one answer lists every fault
        if isinstance(operand, dict):
            self.visit(path, depth)
            ok = True
            for key, item in operand.items():
                if not isinstance(key, str):
                    self.problem(ProblemCode.BAD_KEY, (*path, str(key)), "names are strings")
                    ok = False
                    continue
                named = self.key(key, (*path, key), fields=True)
                ok = self.literal(item, (*path, key), depth + 1) and named and ok
            return ok
        return self.scalar(operand, path, depth)

    # -- value operators --------------------------------------------------------------------------

    def eq(self, operand: object, path: Path, depth: int) -> ValueTest:
        if not self.literal(operand, path, depth):
            return never
        return equals(frozen(operand))

    def ne(self, operand: object, path: Path, depth: int) -> ValueTest:
        return negated_value(self.eq(operand, path, depth))

    def order(self, operand: object, path: Path, depth: int) -> ValueTest:
        op = str(path[-1])
        if isinstance(operand, bool) or not isinstance(operand, int | float | str):
            self.visit(path, depth)
            self.problem(ProblemCode.OPERAND_TYPE, path, f"{op} compares with a number or a string")
            return never
        if not self.scalar(operand, path, depth):
            return never
        compare, wanted = _ORDER[op], kind(operand)

        def ordered(value: object) -> bool:
            return kind(value) is wanted and compare(value, operand)

        return ordered

    def in_(self, operand: object, path: Path, depth: int) -> ValueTest:
        items = self.items(str(path[-1]), operand, path, depth, what="values")
        oks = [self.scalar(item, (*path, i), depth + 1) for i, item in enumerate(items)]
        if not items or not all(oks):
            return never
        return Members(items).test

    def nin(self, operand: object, path: Path, depth: int) -> ValueTest:
        inside = self.in_(operand, path, depth)
        return lambda value: value is ABSENT or not inside(value)

    def exists(self, operand: object, path: Path, depth: int) -> ValueTest:
        self.visit(path, depth)
        if not isinstance(operand, bool):
            self.problem(ProblemCode.OPERAND_TYPE, path, "$exists takes true or false")
            return never
        if operand:
            return lambda value: value is not ABSENT
        return lambda value: value is ABSENT

    def regex(self, operand: object, path: Path, depth: int) -> ValueTest:
        self.visit(path, depth)
        if not isinstance(operand, str):
            self.problem(ProblemCode.OPERAND_TYPE, path, "$regex takes a pattern, as a string")
            return never
        if len(operand) > self.caps.max_regex_length:
            self.problem(ProblemCode.REGEX_TOO_LONG, path, (
                f"patterns are at most {self.caps.max_regex_length} characters; "
                "for a list of exact values use $in"
            ))  # fmt: skip
            return never
        try:
            pattern = re2.compile(operand.encode("utf-8"), self.regex_options)
        except UnicodeEncodeError:
            self.problem(ProblemCode.BAD_REGEX, path, "the pattern holds a character that is not text")
            return never
        except re2.error as error:
            reason = error.args[0] if error.args else ""
            text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
            self.problem(ProblemCode.BAD_REGEX, path, (
                f"the pattern cannot be used ({text}): patterns follow RE2 syntax, "
                "without backreferences or lookaround"
            ))  # fmt: skip
            return never
        if pattern.programsize > self.caps.max_regex_program:
            self.problem(ProblemCode.REGEX_TOO_COMPLEX, path, (
                f"the pattern is too complex ({pattern.programsize} steps, at most "
                f"{self.caps.max_regex_program}); use fewer or smaller repetitions such as {{1,1000}}"
            ))  # fmt: skip
            return never
        search = pattern.search

        def found(value: object) -> bool:
            # Searched as UTF-8 bytes: RE2's own encoding, and no offsets to map back to characters
            # (twice as fast). A lone surrogate, which JSON can carry, is kept as its bytes.
            if kind(value) is not Kind.STRING:
                return False
            return search(cast(str, value).encode("utf-8", "surrogatepass")) is not None

        return found

    def not_(self, operand: object, path: Path, depth: int) -> ValueTest:
        return negated_value(self.value(operand, path, depth))

    def elem_match(self, operand: object, path: Path, depth: int) -> ValueTest:
        if not isinstance(operand, dict) or not operand:
            self.visit(path, depth)
            self.problem(ProblemCode.OPERAND_TYPE, path, (
                '$elemMatch takes the test each element must pass: value operators such as '
                '{"$gt": 3}, or a condition over its fields such as {"category": "running"}'
            ))  # fmt: skip
            return never
        if _is_condition(operand, self.caps.max_depth):
            fields = self.condition(operand, path, depth, fields=True)
            return lambda value: (
                kind(value) is Kind.ARRAY
                and any(isinstance(item, Mapping) and fields(item) for item in cast(Sequence[object], value))
            )
        self.visit(path, depth)
        each = self.operators(operand, path, depth)
        return lambda value: kind(value) is Kind.ARRAY and any(each(i) for i in cast(Sequence[object], value))

    def size(self, operand: object, path: Path, depth: int) -> ValueTest:
        if isinstance(operand, dict) and operand and all(str(k).startswith("$") for k in operand):
            self.visit(path, depth)
            length = self.operators(operand, path, depth)
            return lambda value: kind(value) is Kind.ARRAY and length(len(cast(Sequence[object], value)))
        self.visit(path, depth)
        if isinstance(operand, bool) or not isinstance(operand, int) or operand < 0:
            self.problem(ProblemCode.OPERAND_TYPE, path, (
                '$size takes a whole number, or value operators on the length such as {"$gte": 3}'
            ))  # fmt: skip
            return never
        return lambda value: kind(value) is Kind.ARRAY and len(cast(Sequence[object], value)) == operand

    def all_(self, operand: object, path: Path, depth: int) -> ValueTest:
        items = self.items("$all", operand, path, depth, what="values")
        oks = [self.literal(item, (*path, i), depth + 1) for i, item in enumerate(items)]
        if not items or not all(oks):
            return never
        wanted = tuple(frozen(item) for item in items)

        def holds_all(value: object) -> bool:
            if kind(value) is not Kind.ARRAY:
                return False
            elements = cast(Sequence[object], value)
            return all(any(equal(e, item) for e in elements) for item in wanted)

        return holds_all


def _is_condition(document: Mapping[object, object], limit: int) -> bool:
    """Whether `$elemMatch`'s operand is a condition over the elements' fields rather than value
    operators for each element: it names a field, or combines with `$and`/`$or` (a `$not` is
    looked through, at most `limit` deep)."""
    current: object = document
    for _ in range(limit):
        if not isinstance(current, dict):
            return False
        if not current:  # `{"$not": {}}`: the empty condition, negated
            return True
        if any(not isinstance(k, str) or not k.startswith("$") or k in ("$and", "$or") for k in current):
            return True
        if "$not" not in current:
            return False
        current = current["$not"]
    return False
