"""Per-catalog structures the gate needs on every call, computed once per catalog object.

The gate is on the hot path of every decision, and a catalog never changes once loaded, so the
grouping of atoms by level, purpose and category (and the memo of answers) is built on first use
and kept as long as the catalog object lives.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tactful.catalog.model import Atom, Catalog, Source
from tactful.types import LEVEL_PURPOSE, Level, Purpose

PERSONALIZATION: tuple[Purpose, ...] = tuple(
    LEVEL_PURPOSE[level] for level in Level if level in LEVEL_PURPOSE
)
"""The pyramid's purposes, from `1:many` up."""

PURPOSE_LEVEL: Mapping[Purpose, int] = MappingProxyType({p: i + 1 for i, p in enumerate(PERSONALIZATION)})

PRECISE_LOCATION = "user.location.precise"
_SPECIAL_ROOT = "user.sensitive"
MEMO_LIMIT = 4096


@dataclass(eq=False)
class CatalogIndex:
    names: tuple[str, ...]
    rank: Mapping[str, int]
    upto: tuple[frozenset[str], ...]
    """`upto[r]`: atoms whose level rank is at most r."""
    declaring: Mapping[Purpose, frozenset[str]]
    routes: Mapping[str, tuple[Purpose, ...]]
    """For each atom, the pyramid purposes it declares, lowest level first."""
    explicit_needed: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]]
    """For each special atom: (category, the explicit grants that cover it) per special category it
    carries, its computed inputs' included."""
    sensitive: frozenset[str]
    precise: frozenset[str]
    device: frozenset[str]
    request_context: frozenset[str]
    """Atoms that may be read from the request under legitimate interest (GDPR 1:many)."""
    memo: dict[object, object] = field(default_factory=dict)


_INDEXES: dict[int, tuple[weakref.ref[Catalog], CatalogIndex]] = {}


def index_of(catalog: Catalog) -> CatalogIndex:
    """The index of `catalog`, built on first use and dropped with the catalog."""
    entry = _INDEXES.get(id(catalog))
    if entry is not None and entry[0]() is catalog:
        return entry[1]
    index = build_index(catalog)
    key = id(catalog)
    _INDEXES[key] = (weakref.ref(catalog, lambda _ref, key=key: _INDEXES.pop(key, None)), index)  # type: ignore[misc]
    return index


def _covering(category: str) -> tuple[str, ...]:
    """The explicit grants that cover a special category: itself or a named ancestor below
    `user.sensitive` (consent to "all special categories" is not specific enough to count)."""
    parts = category.split(".")
    names = [".".join(parts[:i]) for i in range(len(parts), 0, -1)]
    return tuple(n for n in names if n.startswith(_SPECIAL_ROOT + "."))


def _special_categories(
    atom: Atom, atoms: Mapping[str, Atom], seen: frozenset[str] = frozenset()
) -> set[str]:
    found = {c.name for c in atom.categories if c.special}
    for item in atom.inputs:
        source = atoms.get(item.atom)
        if source is None or source.name in seen:
            continue
        if item.property is not None:
            prop = source.find_property(item.property)
            if prop is not None and prop.category.special:
                found.add(prop.category.name)
        else:
            found |= _special_categories(source, atoms, seen | {atom.name})
    return found


def build_index(catalog: Catalog) -> CatalogIndex:
    atoms = catalog.atoms
    rank = {a.name: a.level.rank for a in catalog.atom_list}
    upto = tuple(frozenset(n for n, r in rank.items() if r <= limit) for limit in range(len(Level)))
    declaring = {p: frozenset(a.name for a in catalog.atom_list if p in a.purposes) for p in Purpose}
    routes = {a.name: tuple(p for p in PERSONALIZATION if p in a.purposes) for a in catalog.atom_list}
    explicit_needed: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
    for atom in catalog.atom_list:
        special = _special_categories(atom, atoms)
        if special:
            explicit_needed[atom.name] = tuple((c, _covering(c)) for c in sorted(special))
    return CatalogIndex(
        names=tuple(rank),
        rank=MappingProxyType(rank),
        upto=upto,
        declaring=MappingProxyType(declaring),
        routes=MappingProxyType(routes),
        explicit_needed=MappingProxyType(explicit_needed),
        sensitive=_names(a for a in catalog.atom_list if any(c.cpra_sensitive for c in a.categories)),
        precise=_names(
            a for a in catalog.atom_list if any(c.name.startswith(PRECISE_LOCATION) for c in a.categories)
        ),
        device=_names(a for a in catalog.atom_list if a.device_identifier),
        request_context=_names(
            a
            for a in catalog.atom_list
            if a.source is Source.CONTEXT
            and a.level.rank <= Level.MANY.rank
            and not a.device_identifier
            and not any(c.special or c.cpra_sensitive for c in a.categories)
        ),
    )


def _names(atoms: Iterable[Atom]) -> frozenset[str]:
    return frozenset(a.name for a in atoms)
