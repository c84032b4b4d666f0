"""How an atom's pyramid level follows from its source and category (DESIGN §2).

    level = max(SOURCE_BASE[source], category floor for that source)

| source     | base     | category floor used | examples                                                   |
|------------|----------|---------------------|------------------------------------------------------------|
| `context`  | `1:many` | `floor`             | country from IP, language, device type → `1:many`          |
| `trait`    | `1:many` | `stored_floor`      | age range → `1:many`; name, e-mail → `1:1`                 |
| `event`    | `1:some` | `floor`             | a product viewed in this session → `1:some`                |
| `computed` | `1:few`  | `stored_floor`      | favourite category → `1:few`; lifetime value → `1:1`       |
| `session`  | `1:some` | `floor`             | outdoor products viewed in this session → `1:some`         |

Special categories, direct identifiers, precise location and purchase history carry a `1:1` floor
in `categories.py`, and an atom marked `identifier` is `1:1`. A computed atom's level is also at
least the level of each of its inputs. A catalog may declare `level:` to override the derived one;
the loader refuses an override below `1:1` for identifiers and special or sensitive categories, and
below an input's level for computed atoms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from tactful.catalog.categories import Category
from tactful.catalog.model import Source
from tactful.types import Level

SOURCE_BASE: Mapping[Source, Level] = MappingProxyType(
    {
        Source.CONTEXT: Level.MANY,
        Source.TRAIT: Level.MANY,
        Source.EVENT: Level.SOME,
        Source.COMPUTED: Level.FEW,
        Source.SESSION: Level.SOME,
    }
)

_STORED = frozenset({Source.TRAIT, Source.COMPUTED})


def derive_level(
    category: Category, source: Source, *, identifier: bool = False, inputs: Iterable[Level] = ()
) -> Level:
    """The level of an atom of `category` read from `source`, at least that of each input.
    A direct identifier is `1:1` whatever its category: it names the person."""
    if identifier:
        return Level.ONE
    floor = category.stored_floor if source in _STORED else category.floor
    return highest((SOURCE_BASE[source], floor, *inputs))


def highest(levels: Iterable[Level]) -> Level:
    """The highest of `levels`, by rank. (Compared by rank on purpose: `Level` is a `str`, and its
    inherited `>`, `<=` and `>=` order the strings, not the pyramid.)"""
    return max(levels, key=lambda level: level.rank)


def fixed_at_one(category: Category, *, identifier: bool) -> bool:
    """Whether a level override may not lower this atom below `1:1`."""
    return identifier or category.special or category.cpra_sensitive
