"""The per-ceiling tables of a catalog's index against the groups they fold.

At every call the gate reads four entries of `CatalogIndex.ceilings[c]` where it used to walk the
atom groups of that ceiling; these properties walk the groups, one at a time, and compare.
"""

from __future__ import annotations

from itertools import product

from hypothesis import given
from hypothesis import strategies as st

from tactful.catalog.model import Catalog
from tactful.policy.index import PERSONALIZATION, PYRAMID_SETS, PYRAMID_SHIFT, CatalogIndex, build_index
from tactful.policy.state import PURPOSE_BIT
from tests.policy.strategies import catalogs
from tests.policy.test_cases import CATALOGS

pyramid_sets = st.integers(0, PYRAMID_SETS - 1)


def walked(
    index: CatalogIndex,
    ceiling: int,
    request_only: int,
    device_ok: int,
    tcf: int,
    *,
    precise_refused: bool,
    precise_given: bool,
) -> tuple[int, int]:
    """The atoms readable at `ceiling` and those of them read from the request only, group by group
    (sets of pyramid purposes here as `PURPOSE_BIT` masks, as the groups hold them)."""
    decide = from_request = 0
    for usable, atoms in index.groups[ceiling]:
        if usable & request_only == usable:
            atoms &= index.request_context
            from_request |= atoms
        if not usable & device_ok:
            atoms &= ~index.device
        if precise_refused or (usable & tcf == usable and not precise_given):
            atoms &= ~index.precise
        decide |= atoms
    return decide, from_request & decide


def by_tables(
    index: CatalogIndex,
    ceiling: int,
    request_only: int,
    device_ok: int,
    tcf: int,
    *,
    precise_refused: bool,
    precise_given: bool,
) -> tuple[int, int]:
    """The same, as the gate reads it from the tables (sets of pyramid purposes as small masks)."""
    masks = index.ceilings[ceiling]
    decide = masks.atoms & ~(masks.stored_only[request_only] | masks.no_device[device_ok])
    if precise_refused:
        decide &= ~index.precise
    elif not precise_given:
        decide &= ~masks.tcf_precise[tcf]
    return decide, masks.from_request[request_only] & decide


def as_purposes(pyramid_set: int) -> int:
    return sum(PURPOSE_BIT[p] for k, p in enumerate(PERSONALIZATION) if pyramid_set >> k & 1)


def agree(index: CatalogIndex, *args: int, precise_refused: bool, precise_given: bool) -> bool:
    ceiling, *sets = args
    fast = by_tables(index, ceiling, *sets, precise_refused=precise_refused, precise_given=precise_given)
    slow = walked(
        index,
        ceiling,
        *map(as_purposes, sets),
        precise_refused=precise_refused,
        precise_given=precise_given,
    )
    return fast == slow


# Each property walks every ceiling and every combination of two of the three sets (the third and
# the flags drawn): a disagreement often needs one exact combination, which drawing alone misses.
CEILINGS = range(len(PERSONALIZATION) + 1)
SETS = range(PYRAMID_SETS)


@given(catalogs(), pyramid_sets, st.booleans(), st.booleans())
def test_the_request_and_device_tables_are_the_groups_walked_one_by_one(
    catalog: Catalog, tcf: int, precise_refused: bool, precise_given: bool
) -> None:
    index = build_index(catalog)
    flags = {"precise_refused": precise_refused, "precise_given": precise_given}
    for ceiling, request_only, device_ok in product(CEILINGS, SETS, SETS):
        assert agree(index, ceiling, request_only, device_ok, tcf, **flags), (
            ceiling,
            request_only,
            device_ok,
        )


@given(catalogs(), pyramid_sets, pyramid_sets)
def test_the_precise_location_tables_are_the_groups_walked_one_by_one(
    catalog: Catalog, request_only: int, device_ok: int
) -> None:
    index = build_index(catalog)
    for ceiling, tcf, refused, given_ in product(CEILINGS, SETS, (False, True), (False, True)):
        flags = {"precise_refused": refused, "precise_given": given_}
        assert agree(index, ceiling, request_only, device_ok, tcf, **flags), (ceiling, tcf, refused, given_)


def test_the_tables_of_a_ceiling_cover_its_groups() -> None:
    catalog = CATALOGS["shop"]
    index = build_index(catalog)
    for ceiling in CEILINGS:
        assert index.ceilings[ceiling].atoms == sum(atoms for _, atoms in index.groups[ceiling])
    assert index.ceilings[0].atoms == 0
    assert index.ceilings[len(PERSONALIZATION)].atoms


def test_a_set_of_pyramid_purposes_is_its_purpose_bits_shifted() -> None:
    for chosen in range(PYRAMID_SETS):
        assert as_purposes(chosen) >> PYRAMID_SHIFT == chosen
