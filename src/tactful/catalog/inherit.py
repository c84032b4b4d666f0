"""Computed atoms: resolve their inputs and make them inherit the strictest of them.

A computed atom is at least as strict as what it is derived from: its level is at least each
input's, its retention at most the shortest input's, and its category keeps every legal class of
the inputs' categories (an inference from health data is health data). A declared category may be
stricter, since an inference can create special-category data out of ordinary inputs (CJEU C-184/20).
Inputs are atoms (`events.product_viewed`), one property of an event atom
(`events.order_completed.products[].category`), or every atom of a source (`events.*`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from tactful.catalog import categories as taxonomy
from tactful.catalog.categories import Category
from tactful.catalog.levels import derive_level
from tactful.catalog.model import Atom, AtomInput, Source
from tactful.catalog.retention import REQUEST_ONLY, format_retention
from tactful.catalog.schemas import AtomSchema

if TYPE_CHECKING:
    from tactful.catalog.assemble import Assembler


@dataclass(frozen=True, slots=True)
class _Resolved:
    reference: AtomInput
    atom: Atom
    categories: tuple[Category, ...]


def assemble_computed(assembler: Assembler) -> None:
    """Build every computed atom, each after the computed atoms it reads; report cycles."""
    pending = {n: s for n, s in assembler.schemas.items() if n.startswith("computed.")}
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            cycle = " → ".join((*chain[chain.index(name) :], name))
            assembler.report(f"computed atoms form a cycle: {cycle}", "remove one of the inputs", atom=name)
            return
        state[name] = "visiting"
        for text in pending[name].inputs:
            head = _declared_head(text, assembler.schemas)
            if head in pending:
                visit(head, (*chain, name))
        state[name] = "done"
        _computed(assembler, name, pending[name])

    for name in pending:
        visit(name, ())


def _declared_head(text: str, declared: dict[str, AtomSchema]) -> str | None:
    """The declared atom that `text` names or names a property of (the longest match)."""
    if text in declared:
        return text
    cuts = [i for i, char in enumerate(text) if char == "."]
    return next((text[:i] for i in reversed(cuts) if text[:i] in declared), None)


def _resolve(assembler: Assembler, name: str, text: str) -> list[_Resolved]:
    atoms = assembler.atoms
    if text.endswith(".*"):
        prefix = text[:-1]
        matched = [a for n, a in atoms.items() if n.startswith(prefix) and n != name]
        if not matched:
            assembler.report(f"input '{text}' matches no atom", "remove it or declare the atoms", atom=name)
        return [_Resolved(AtomInput(a.name), a, a.categories) for a in matched]
    head = _declared_head(text, assembler.schemas)
    if head is None:
        fix = assembler.suggest(text, atoms, "name a declared atom, or a property as 'events.x.property'")
        assembler.report(f"input '{text}' is not a declared atom", fix, atom=name, key="inputs")
        return []
    atom = atoms.get(head)
    if atom is None:  # declared but invalid: its own problems are already reported
        return []
    if head == text:
        return [_Resolved(AtomInput(head), atom, atom.categories)]
    prop_name = text[len(head) + 1 :]
    prop = atom.find_property(prop_name)
    if prop is None:
        names = {p.name: p for p in atom.properties}
        fix = assembler.suggest(prop_name, names, f"declare it under the properties of '{head}'")
        assembler.report(
            f"input '{text}': '{head}' has no property '{prop_name}'", fix, atom=name, key="inputs"
        )
        return []
    return [_Resolved(AtomInput(head, prop_name), atom, (prop.category,))]


def _computed(assembler: Assembler, name: str, schema: AtomSchema) -> None:
    purposes = assembler.purposes(name, schema)
    if not schema.inputs:
        assembler.report("a computed atom needs inputs", "list the atoms it is derived from under 'inputs:'",
                         atom=name)  # fmt: skip
        return
    resolved = [r for text in schema.inputs for r in _resolve(assembler, name, text)]
    if not resolved:
        return
    for r in resolved:
        if r.atom.retention == REQUEST_ONLY:
            assembler.report(
                f"input '{r.reference}' is used for the request only and never stored",
                "derive it from stored atoms, or remove that input",
                atom=name,
                key="inputs",
            )
            return
    category = _category(assembler, name, schema, resolved)
    retention = _retention(assembler, name, schema, resolved)
    if category is None or retention is None:
        return
    input_levels = [r.atom.level for r in resolved]
    derived = derive_level(category, Source.COMPUTED, identifier=schema.identifier, inputs=input_levels)
    level = assembler.level(name, schema, derived, (category,))
    highest = max(resolved, key=lambda r: r.atom.level.rank)
    if level.rank < highest.atom.level.rank:
        assembler.report(
            f"level '{level}' is below '{highest.atom.level}' of its input '{highest.reference}'",
            f"raise it to at least \"{highest.atom.level}\", or remove 'level:'",
            atom=name,
            key="level",
        )
        level = highest.atom.level
    atom = Atom(
        name=name,
        source=Source.COMPUTED,
        category_info=category,
        level=level,
        purposes=purposes,
        retention=retention,
        description=schema.description,
        identifier=schema.identifier,
        device_identifier=schema.device_identifier or any(r.atom.device_identifier for r in resolved),
        recipients=tuple(schema.recipients),
        explicit_consent=schema.explicit_consent,
        copy_forbidden=schema.copy_forbidden,
        inputs=tuple(dict.fromkeys(r.reference for r in resolved)),
    )
    assembler.common_checks(atom)
    assembler.atoms[name] = atom


def _category(
    assembler: Assembler, name: str, schema: AtomSchema, resolved: list[_Resolved]
) -> Category | None:
    strictest = taxonomy.strictest(c for r in resolved for c in r.categories)
    assert strictest is not None  # `resolved` is never empty here
    if schema.category is None:
        return strictest
    declared = assembler.category(name, schema.category)
    if declared is None:
        return None
    for r in resolved:
        for c in r.categories:
            if declared.is_laxer_than(c):
                kind = "a special category" if c.special else "a sensitive category"
                assembler.report(
                    f"category '{declared.name}' is laxer than '{c.name}' ({kind}) "
                    f"of its input '{r.reference}'",
                    f"declare category '{c.name}' or a stricter one",
                    atom=name,
                    key="category",
                )
                return None
    return declared


def _retention(
    assembler: Assembler, name: str, schema: AtomSchema, resolved: list[_Resolved]
) -> timedelta | None:
    shortest = min(resolved, key=lambda r: r.atom.retention)
    if schema.retention is None:
        return shortest.atom.retention
    period = assembler.retention(name, schema.retention, Source.COMPUTED)
    if period is not None and period > shortest.atom.retention:
        limit = format_retention(shortest.atom.retention)
        assembler.report(
            f"retention {format_retention(period)} is longer than the {limit} "
            f"of its input '{shortest.reference}'",
            f"shorten it to at most {limit}, or remove 'retention:' to inherit it",
            atom=name,
            key="retention",
        )
        return None
    return period
