"""The limits a condition document must keep to, so that compiling and evaluating it cost a bounded,
predictable amount whatever a marketer (or a stolen admin key) writes.

Evaluation time is bounded by these caps and by the size of the values it reads, not by a clock:
every node is visited at most once per value it tests, regular expressions run on RE2 (linear in the
text, no backreferences) with a capped program, and no document can loop. A document over a cap is
refused at compile time with the cap's problem code; nothing is truncated.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caps:
    """Limits on one condition document (the defaults suit targeting rules written by people)."""

    max_nodes: int = 2000
    """JSON values in the whole document: every object, array, string, number and boolean counts once."""
    max_depth: int = 12
    """How deep values nest: the document is at depth 1, the value under one of its keys at depth 2,
    an item of a list there at depth 3, and so on."""
    max_string: int = 1000
    """Characters in one string operand (a value to compare with)."""
    max_key: int = 200
    """Characters in one atom or field name."""
    max_list: int = 1000
    """Items in one list: `$in`, `$nin`, `$all`, `$and`, `$or`, or an array given to `$eq`."""
    max_regex_length: int = 500
    """Characters in one `$regex` pattern."""
    max_regex_program: int = 2000
    """RE2 program size of one `$regex` (about one unit per character class or literal after
    repetitions are expanded: `a{1000}` is about 1000)."""
    regex_max_mem: int = 1 << 20
    """Bytes RE2 may use to compile and run one pattern; a pattern that needs more is refused."""
    max_problems: int = 20
    """Problems reported before compiling stops: a document with more is not worth reading further."""


DEFAULT_CAPS = Caps()
