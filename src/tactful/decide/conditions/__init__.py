"""The condition language: which subjects an audience or an experience is for, as JSON data.

A closed grammar of MongoDB-style operators (those GrowthBook targeting uses), interpreted by pure
code: a condition is never evaluated as code, and nothing in it can run, loop or reach a file.

    document ──compile(caps)──▶ Compiled ──evaluate(view)──▶ Outcome(match, atoms_read)
        │                          │                           match: MATCH | NO_MATCH | WITHHELD
        └──▶ Problems              └── .atoms (what it can ever read) ──▶ decide.levels (its level)
             (code, path, message)

**Grammar.**

    condition := { entry, ... }                      every entry must hold ({} holds for everyone)
    entry     := atom-name: value
               | "$and": [condition, ...] | "$or": [condition, ...] | "$not": condition
    value     := string | number | boolean            equal to it (see the type rules)
               | { operator: operand, ... }           every operator must hold
    operator  := "$eq" | "$ne": any JSON value but null (arrays and objects compare whole)
               | "$gt" | "$gte" | "$lt" | "$lte": a number or a string
               | "$in" | "$nin": [string | number | boolean, ...]   (an array value: any / none
                                                      of its elements listed)
               | "$exists": true | false
               | "$regex": an RE2 pattern (found anywhere in a string; (?i) for any case)
               | "$not": value
               | "$elemMatch": { operator: ... }      some element passes these value operators
               | "$elemMatch": condition              some element (an object) passes this condition,
                                                      whose keys are the element's field names
               | "$size": whole number | { operator: ... on the length }
               | "$all": [any JSON value but null, ...]   the array holds each of them

An `$elemMatch` object of value operators only (looking through `$not`) tests each element as a
value; one that names a field or uses `$and`/`$or` is a condition over each element's fields.

**Keys are atom names** of the catalog (`context.location.country`, `traits.first_name`,
`events.product_viewed`, `computed.favorite_category`), whole: a dot never reaches into an atom's
value. An atom whose value is an array (a list of events, each an object of its properties) is
reached into by `$elemMatch`, whose condition names the elements' fields literally (one level;
nest `$elemMatch` for arrays inside them): `{"events.order_completed": {"$elemMatch":
{"products": {"$elemMatch": {"category": "running"}}}}}`. So the atoms a condition reads are exactly
its top-level keys and those under `$and`, `$or` and `$not`, found without evaluating anything.

**Absent and withheld.** A permitted atom with no value (or a null one) is absent: it fails
every test but `$ne`, `$nin`, `$exists: false` and negations, as in MongoDB. An atom the subject's
Allowance holds back is not absent: the whole condition is WITHHELD, which never counts as a match,
whatever `$not`, `$ne`, `$nin` or `$exists: false` say.

**Type rules** (`values.py`): equality is strict about kind (`5` never equals `"5"`, `true` never
equals `1`); order compares two numbers or two strings; mismatched kinds fail every test, so their
negations pass. Null is not a value to compare with: absence is tested with `$exists`.

**Caps** (`caps.py`): document size and depth, string, name and list lengths, and each pattern's
length and RE2 program size, all checked at compile time, so that evaluation time is bounded by
the caps and the size of the values read, never by a clock.

Modules: `compiler.py` checks the grammar and the caps and builds the condition from the small
functions of `predicates.py`; `compiled.py` reads the atoms from a view and runs them; `values.py`
holds the type rules, `problems.py` the problem codes.
"""

from tactful.decide.conditions.caps import DEFAULT_CAPS, Caps
from tactful.decide.conditions.compiled import Compiled, Match, Outcome
from tactful.decide.conditions.compiler import ATOM_NAME, LOGICAL, VALUE_OPERATORS, compile
from tactful.decide.conditions.problems import Problem, ProblemCode, Problems

__all__ = [
    "ATOM_NAME",
    "DEFAULT_CAPS",
    "LOGICAL",
    "VALUE_OPERATORS",
    "Caps",
    "Compiled",
    "Match",
    "Outcome",
    "Problem",
    "ProblemCode",
    "Problems",
    "compile",
]
