"""Per-catalog structures the gate needs on every call, built when the gate is compiled.

The gate is on the hot path of every decision, so everything about a catalog's atoms that does not
depend on the subject is worked out once, by `build_index` when the gate is compiled (`compiled.py`),
and held by the compiled gate. Atoms are bits of an integer (bit i is `names[i]`), so that a
call assembles its atom sets with a few integer operations over precomputed groups instead of
walking the atoms one by one; `atoms(mask)` turns a mask back into names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tactful.catalog.model import Atom, Catalog, Source
from tactful.policy.state import PURPOSE_BIT
from tactful.types import LEVEL_PURPOSE, Level, Purpose

PERSONALIZATION: tuple[Purpose, ...] = tuple(
    LEVEL_PURPOSE[level] for level in Level if level in LEVEL_PURPOSE
)
"""The pyramid's purposes, from `1:many` up."""

PURPOSE_LEVEL: Mapping[Purpose, int] = MappingProxyType({p: i + 1 for i, p in enumerate(PERSONALIZATION)})

PYRAMID_SHIFT = PURPOSE_BIT[PERSONALIZATION[0]].bit_length() - 1
PYRAMID_SETS = 1 << len(PERSONALIZATION)
"""Sets of pyramid purposes are also kept as small masks, bit k for the purpose of level k + 1, so
that they index tables: `purpose_mask >> PYRAMID_SHIFT & (PYRAMID_SETS - 1)` is one. (The pyramid's
purposes follow each other in `Purpose` order, checked below.)"""
if any(PURPOSE_BIT[p] != 1 << (PYRAMID_SHIFT + k) for k, p in enumerate(PERSONALIZATION)):
    raise RuntimeError("the pyramid's purposes must follow each other in Purpose order")


PRECISE_LOCATION = "user.location.precise"
_SPECIAL_ROOT = "user.sensitive"
_CHUNK = 6
"""Atoms per lookup table when a mask turns back into names: 64 sets per 6 atoms, about 150 KB for
60 atoms (8 would convert a little faster for four times the memory)."""
_CHUNK_MASK = (1 << _CHUNK) - 1
_NAMES_HELD = 4096
_NO_NAMES: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False, slots=True)
class SpecialGroup:
    """The atoms that carry one special category (their computed inputs' included), and the
    explicit grants that cover it."""

    category: str
    covering: tuple[str, ...]
    atoms: int


@dataclass(frozen=True, eq=False, slots=True)
class CeilingMasks:
    """One ceiling's atom groups (`CatalogIndex.groups`) folded into tables, so that the gate
    assembles the atoms readable at that ceiling without walking the groups.

    Each table is indexed by a set of pyramid purposes as a small mask (`PYRAMID_SHIFT`) and gives
    the atoms of the groups it concerns; `groups` itself stays the reference reading.
    """

    atoms: int
    """Every atom readable at this ceiling through some pyramid purpose."""
    stored_only: tuple[int, ...]
    """By the purposes that hold for the request only: the atoms all of whose usable purposes are
    among them and that cannot be read from the request."""
    from_request: tuple[int, ...]
    """By the same index: the atoms that are then read from the request only."""
    no_device: tuple[int, ...]
    """By the purposes that let device identifiers be read: the device-identifier atoms none of whose
    usable purposes is among them."""
    tcf_precise: tuple[int, ...]
    """By the purposes decided by a TC string: the precise-location atoms all of whose usable
    purposes are among them (TCF special feature 1 then gates them)."""


@dataclass(frozen=True, eq=False)
class CatalogIndex:
    names: tuple[str, ...]
    bit: Mapping[str, int]
    everything: int
    rank: Mapping[str, int]
    upto: tuple[int, ...]
    """`upto[r]`: atoms whose level rank is at most r."""
    groups: tuple[tuple[tuple[int, int], ...], ...]
    """`groups[c]`, for a ceiling of rank c: (the pyramid purposes through which the atoms may be
    read at that ceiling, the atoms), for every atom of rank at most c that has such a purpose.
    Every other atom is refused at that ceiling whatever the consent."""
    ceilings: tuple[CeilingMasks, ...]
    """`ceilings[c]`: `groups[c]` as tables, what the gate reads on every call."""
    declaring: Mapping[Purpose, int]
    essential: frozenset[str]
    routes: Mapping[str, tuple[Purpose, ...]]
    """For each atom, the pyramid purposes it declares, lowest level first."""
    explicit_needed: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]]
    """For each special atom: (category, the explicit grants that cover it) per special category it
    carries, its computed inputs' included."""
    special: tuple[SpecialGroup, ...]
    sensitive: int
    precise: int
    device: int
    request_context: int
    """Atoms that may be read from the request under legitimate interest (GDPR 1:many)."""
    _tables: tuple[tuple[int, tuple[frozenset[str], ...]], ...] = field(repr=False)
    _names: dict[int, frozenset[str]] = field(repr=False)
    """The names of masks: those every call meets, worked out when the index is built, then those
    calls meet (the few combinations of consent and flags subjects have; `_NAMES_HELD` at most)."""

    def atoms(self, mask: int) -> frozenset[str]:
        """The names of the atoms in `mask`."""
        found = self._names.get(mask)
        if found is None:
            found = _convert(self._tables, mask)
            if len(self._names) < _NAMES_HELD:
                self._names[mask] = found
        return found

    def named(self, mask: int) -> Names:
        """The names in `mask` as a collection that is read, not built (in catalog order)."""
        return Names(self, mask)


class Names(Collection[str]):
    """The atoms of one mask: membership by bit, iteration in catalog order, no set built."""

    __slots__ = ("_index", "_mask")

    def __init__(self, index: CatalogIndex, mask: int) -> None:
        self._index, self._mask = index, mask

    def __contains__(self, name: object) -> bool:
        return bool(self._mask & self._index.bit.get(name, 0)) if isinstance(name, str) else False

    def __iter__(self) -> Iterator[str]:
        mask = self._mask
        return (name for i, name in enumerate(self._index.names) if mask >> i & 1)

    def __len__(self) -> int:
        return self._mask.bit_count()


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
    """The index of `catalog`, from its atoms (the tables `_ceiling_masks` folds come from `_groups`,
    the plain reading; the tests compare the two)."""
    atom_list = catalog.atom_list
    names = tuple(a.name for a in atom_list)
    bit = {name: 1 << i for i, name in enumerate(names)}
    rank = {a.name: a.level.rank for a in atom_list}
    routes = {a.name: tuple(p for p in PERSONALIZATION if p in a.purposes) for a in atom_list}

    def mask(chosen: Iterable[Atom]) -> int:
        return sum(bit[a.name] for a in chosen)

    upto = tuple(mask(a for a in atom_list if rank[a.name] <= limit) for limit in range(len(Level)))
    groups = tuple(_groups(names, bit, rank, routes, ceiling) for ceiling in range(len(Level)))
    declaring = {p: mask(a for a in atom_list if p in a.purposes) for p in Purpose}
    explicit_needed: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
    by_category: dict[str, int] = {}
    for atom in atom_list:
        special = sorted(_special_categories(atom, catalog.atoms))
        if special:
            explicit_needed[atom.name] = tuple((c, _covering(c)) for c in special)
        for category in special:
            by_category[category] = by_category.get(category, 0) | bit[atom.name]
    precise = mask(a for a in atom_list if any(c.name.startswith(PRECISE_LOCATION) for c in a.categories))
    device = mask(a for a in atom_list if a.device_identifier)
    request_context = mask(
        a
        for a in atom_list
        if a.source is Source.CONTEXT
        and a.level.rank <= Level.MANY.rank
        and not a.device_identifier
        and not any(c.special or c.cpra_sensitive for c in a.categories)
    )
    ceilings = tuple(
        _ceiling_masks(g, precise=precise, device=device, request_context=request_context) for g in groups
    )
    tables = _tables(names)
    known = {0: _NO_NAMES}
    for value in (*upto, *declaring.values(), *(sum(m for _, m in g) for g in groups)):
        known.setdefault(value, _convert(tables, value))
    return CatalogIndex(
        names=names,
        bit=MappingProxyType(bit),
        everything=(1 << len(names)) - 1,
        rank=MappingProxyType(rank),
        upto=upto,
        groups=groups,
        ceilings=ceilings,
        declaring=MappingProxyType(declaring),
        essential=known[declaring[Purpose.ESSENTIAL]],
        routes=MappingProxyType(routes),
        explicit_needed=MappingProxyType(explicit_needed),
        special=tuple(SpecialGroup(c, _covering(c), m) for c, m in sorted(by_category.items())),
        sensitive=mask(a for a in atom_list if any(c.cpra_sensitive for c in a.categories)),
        precise=precise,
        device=device,
        request_context=request_context,
        _tables=tables,
        _names=known,
    )


def _groups(
    names: tuple[str, ...],
    bit: Mapping[str, int],
    rank: Mapping[str, int],
    routes: Mapping[str, tuple[Purpose, ...]],
    ceiling: int,
) -> tuple[tuple[int, int], ...]:
    # At a ceiling of rank c the pyramid purposes of levels 1..c all hold (that is what the
    # ceiling means), so which of an atom's routes are usable depends on c alone.
    found: dict[int, int] = {}
    for name in names:
        if rank[name] > ceiling:
            continue
        usable = sum(PURPOSE_BIT[p] for p in routes[name] if PURPOSE_LEVEL[p] <= ceiling)
        if usable:
            found[usable] = found.get(usable, 0) | bit[name]
    return tuple(found.items())


def _ceiling_masks(
    groups: tuple[tuple[int, int], ...], *, precise: int, device: int, request_context: int
) -> CeilingMasks:
    # Groups are disjoint, so what the gate removes from each group can be removed from their
    # union at once; for each set of purposes, the tables hold the union over the groups it concerns.
    pyramid = [(usable >> PYRAMID_SHIFT & (PYRAMID_SETS - 1), atoms) for usable, atoms in groups]

    def table(concerns: Callable[[int, int], bool], part: int) -> tuple[int, ...]:
        return tuple(
            sum(atoms & part for usable, atoms in pyramid if concerns(usable, chosen))
            for chosen in range(PYRAMID_SETS)
        )

    def within(usable: int, chosen: int) -> bool:
        return usable & chosen == usable

    return CeilingMasks(
        atoms=sum(atoms for _, atoms in pyramid),
        stored_only=table(within, ~request_context),
        from_request=table(within, request_context),
        no_device=table(lambda usable, chosen: not usable & chosen, device),
        tcf_precise=table(within, precise),
    )


def _tables(names: tuple[str, ...]) -> tuple[tuple[int, tuple[frozenset[str], ...]], ...]:
    out: list[tuple[int, tuple[frozenset[str], ...]]] = []
    for shift in range(0, len(names), _CHUNK):
        chunk = names[shift : shift + _CHUNK]
        table: list[frozenset[str]] = [_NO_NAMES]
        for value in range(1, 1 << len(chunk)):
            low = value & -value
            table.append(table[value ^ low] | {chunk[low.bit_length() - 1]})
        out.append((shift, tuple(table)))
    return tuple(out)


def _convert(tables: tuple[tuple[int, tuple[frozenset[str], ...]], ...], mask: int) -> frozenset[str]:
    return _NO_NAMES.union(*(table[(mask >> shift) & _CHUNK_MASK] for shift, table in tables))
