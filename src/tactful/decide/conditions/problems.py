"""What can be wrong with a condition document: a code to branch on, where, and words to act on."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ProblemCode(StrEnum):
    NOT_AN_OBJECT = "not_an_object"
    """A condition (the document, an item of `$and`/`$or`, the operand of `$not`) is not an object."""
    BAD_KEY = "bad_key"
    """A key is not an atom name (or, inside `$elemMatch`, not a field name)."""
    UNKNOWN_OPERATOR = "unknown_operator"
    """A `$` key the language does not have (`$where`, `$expr`, `$nor`, `$options`, a typo)."""
    OPERATOR_OUT_OF_PLACE = "operator_out_of_place"
    """A value operator (`$gt`) where a condition is expected, or a logical one (`$or`) under an atom."""
    MIXED_OPERATORS = "mixed_operators"
    """An object that mixes `$` operators and plain field names."""
    OPERAND_TYPE = "operand_type"
    """An operator's operand has the wrong type (`$gt` needs a number or a string, ...)."""
    NULL_VALUE = "null_value"
    """A null operand: absence is tested with `$exists`, never by comparing with null."""
    LITERAL_OBJECT = "literal_object"
    """A plain object where a value is expected: compare with `$eq`, test elements with `$elemMatch`."""
    LITERAL_ARRAY = "literal_array"
    """A plain array where a value is expected: `$in` for any of several values, `$eq` for the array."""
    EMPTY = "empty"
    """An empty list or operator object where at least one item is needed."""
    BAD_REGEX = "bad_regex"
    """A pattern RE2 cannot compile (backreferences, lookaround, a syntax error)."""
    TOO_MANY_NODES = "too_many_nodes"
    TOO_DEEP = "too_deep"
    STRING_TOO_LONG = "string_too_long"
    KEY_TOO_LONG = "key_too_long"
    LIST_TOO_LONG = "list_too_long"
    REGEX_TOO_LONG = "regex_too_long"
    REGEX_TOO_COMPLEX = "regex_too_complex"
    TOO_MANY_PROBLEMS = "too_many_problems"


@dataclass(frozen=True, slots=True)
class Problem:
    """One fault in a condition document. `path` leads from the document's root to the faulty value
    (object keys and list indexes, as pydantic's `loc`); `pointer` is the same as a JSON Pointer."""

    code: ProblemCode
    path: tuple[str | int, ...]
    message: str

    @property
    def pointer(self) -> str:
        """RFC 6901: `/context.location.country/$in/2` (atom names hold dots, so no dotted path)."""
        return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in self.path)

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message} [{self.code}]"


@dataclass(frozen=True, slots=True)
class Problems:
    """Why a condition document was refused: at least one problem, in document order."""

    items: tuple[Problem, ...]

    @property
    def codes(self) -> frozenset[ProblemCode]:
        return frozenset(p.code for p in self.items)

    def __str__(self) -> str:
        return "; ".join(str(p) for p in self.items)
