"""The field filter that collection runs on every message: keep what the catalog declares, name
what it drops. Pure and on the hot path, so the catalog is compiled once into nested lookup tables
(`Shape`: key → `Rule`) and a message is walked once, without building any path it keeps.

Text in the fields the catalog marks (`text: free`, `text: url`) is redacted as it is kept
(`redact.Redactor`); every other declared string loses e-mail addresses, phone and card numbers the
same way (`redact.personal`), except an identifier's (its trait is sealed in the profile, and no
event row holds it); each removal is named (`email:properties.query`, `email:traits.birthdate`).

    declared leaf ─ identifier ──────────────▶ kept as sent (sealed by the profile)
                  ├ text: free / url ────────▶ Redactor
                  ├ string, `@` or 7 digits ─▶ redact.personal
                  └ anything else ───────────▶ kept as sent

Paths are written as in the catalog: `context.location.country`, `properties.products[].sku`
(`[]` marks an array of objects, each filtered alike). A declared leaf keeps a scalar or an array of
scalars; an object is kept only through the fields declared inside it, so nothing nested rides in
unannounced.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, overload

from tactful.catalog.redact import Redactor, TextKind, may_hold_personal, personal

SYSTEM_FIELDS: tuple[str, ...] = (
    "messageId", "type", "event", "userId", "anonymousId", "previousId", "groupId", "timestamp",
)  # fmt: skip
"""Top-level fields every message keeps: they say what happened and to whom."""

CONSENT_FIELDS: tuple[str, ...] = ("consent", "consentManagement", "gpc")
"""Context fields the consent ledger reads; always kept."""

DECISION_ID = "decision_id"
"""`properties.decision_id` links an outcome to the decision it follows; always kept by the filter
(collection then keeps it only where an outcome may be measured: `collect.outcomes`)."""

_DECISION_ID_SHAPE = re.compile(r"dc_[A-Za-z0-9_-]{1,61}")


def is_decision_id(value: object) -> bool:
    """Whether `value` has the shape of a decision id (`dc_` and up to 61 URL-safe characters), as
    `POST /v1/decide` makes them: anything else cannot name a decision."""
    return isinstance(value, str) and _DECISION_ID_SHAPE.fullmatch(value) is not None


SYSTEM_PATHS: frozenset[str] = frozenset(
    (*SYSTEM_FIELDS, f"properties.{DECISION_ID}", *(f"context.{name}" for name in CONSENT_FIELDS))
)

TYPE_EVENTS: Mapping[str, str] = MappingProxyType(
    {"page": "events.page_viewed", "screen": "events.screen_viewed", "group": "events.group"}
)
"""The event atom of each message type that is not a named track event."""

_MAX_NAMED_DEPTH = 8  # how deep an undeclared object is walked to name its leaves


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do with the value under one key."""

    leaf: bool = False
    """Keep a scalar or an array of scalars."""
    verbatim: bool = False
    """Keep the value whatever it is (system fields)."""
    transient: bool = False
    """Declared, read for the request only: never kept in the stored message."""
    fields: Shape | None = None
    """The value is an object: keep these of its keys."""
    elements: Shape | None = None
    """The value is an array of objects: keep these keys of each."""
    text: TextKind | None = None
    """A leaf whose text is redacted as it is kept."""
    sealed: bool = False
    """A leaf that holds an identifier (`traits.email`): kept as sent, for the profile to seal."""


Shape = Mapping[str, Rule]

VERBATIM = Rule(verbatim=True)
LEAF = Rule(leaf=True)


@dataclass(frozen=True, slots=True)
class FilterResult:
    """The message as it may be stored, and what was taken out of it."""

    kept: dict[str, Any]
    dropped: tuple[str, ...] = ()
    """Paths of fields the catalog does not declare (`properties.color`, `products[].size`)."""
    transient: tuple[str, ...] = ()
    """Paths of declared fields used for this request only and not stored (`context.ip`)."""
    atom: str | None = None
    """The event atom the message belongs to, if it is declared."""
    redacted: tuple[str, ...] = ()
    """One `<found>:<path>` per removal from a text field (`email:properties.query`), repeats kept."""


@dataclass
class _Node:
    leaf: bool = False
    transient: bool = False
    text: TextKind | None = None
    sealed: bool = False
    fields: dict[str, _Node] = field(default_factory=dict)
    elements: dict[str, _Node] = field(default_factory=dict)

    def freeze(self) -> Rule:
        return Rule(
            leaf=self.leaf,
            transient=self.transient,
            fields=_freeze(self.fields) if self.fields else None,
            elements=_freeze(self.elements) if self.elements else None,
            text=self.text,
            sealed=self.sealed,
        )


def _freeze(nodes: Mapping[str, _Node]) -> Shape:
    return MappingProxyType({key: node.freeze() for key, node in nodes.items()})


def build_shape(
    paths: Mapping[str, bool], texts: Mapping[str, TextKind] | None = None, sealed: Iterable[str] = ()
) -> dict[str, Rule]:
    """The shape that keeps `paths` (path → transient?), e.g. `{"products[].sku": False}`; `texts`
    names the paths whose text is redacted, and how; `sealed` those that hold identifiers."""
    texts = texts or {}
    identifiers = frozenset(sealed)
    root: dict[str, _Node] = {}
    for path, transient in paths.items():
        level = root
        parts = path.split(".")
        for index, part in enumerate(parts):
            array = part.endswith("[]")
            key = part[:-2] if array else part
            node = level.setdefault(key, _Node())
            if index == len(parts) - 1:
                node.leaf, node.transient, node.text = True, transient, texts.get(path)
                node.sealed = path in identifiers
            else:
                level = node.elements if array else node.fields
    return {key: node.freeze() for key, node in root.items()}


_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NOT_WORD = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=4096)
def snake_case(name: str) -> str:
    """`Product Viewed`, `product-viewed` and `productViewed` all become `product_viewed`."""
    return _NOT_WORD.sub("_", _CAMEL_BOUNDARY.sub("_", name).lower()).strip("_")


def event_atom_name(kind: object, event: object = None) -> str | None:
    """The event atom a message maps to: `events.<snake_case of event>` for track calls,
    `events.page_viewed`, `events.screen_viewed` and `events.group` for the other calls."""
    if kind == "track":
        if isinstance(event, str) and (snake := snake_case(event)):
            return f"events.{snake}"
        return None
    return TYPE_EVENTS.get(kind) if isinstance(kind, str) else None


class MessageFilter:
    """The compiled filter of one catalog. Build with `compile_filter`."""

    __slots__ = ("_by_type", "_events", "_other", "_redactor", "_undeclared_track")

    def __init__(
        self,
        by_type: Mapping[str, Shape],
        events: Mapping[str, Shape],
        undeclared_track: Shape,
        redactor: Redactor | None = None,
    ) -> None:
        self._redactor = redactor or Redactor()
        memo: dict[int, _Level] = {}  # shapes shared between atoms are compiled once
        self._by_type = {kind: _level(shape, memo) for kind, shape in by_type.items()}
        self._events = {atom: _level(shape, memo) for atom, shape in events.items()}
        self._undeclared_track = _level(undeclared_track, memo)
        self._other = self._by_type[""]

    def filter(self, message: Mapping[str, Any]) -> FilterResult:
        kind = message.get("type")
        atom = event_atom_name(kind, message.get("event"))
        if kind == "track":
            level = self._events.get(atom, self._undeclared_track) if atom else self._undeclared_track
        else:
            level = self._by_type.get(kind, self._other) if isinstance(kind, str) else self._other
        walk = _Walk(self._redactor)
        kept = _filter_object(message, level, "", walk)
        declared = atom if atom is not None and atom in self._events else None
        return FilterResult(
            kept, tuple(dict.fromkeys(walk.dropped)), tuple(walk.transient), declared, tuple(walk.redacted)
        )


def compile_filter(
    *,
    context: Mapping[str, bool],
    traits: Iterable[str],
    events: Mapping[str, Iterable[str]],
    texts: Mapping[str, Mapping[str, TextKind]] | None = None,
    redactor: Redactor | None = None,
    identifiers: Iterable[str] = (),
) -> MessageFilter:
    """Compile the declared paths: `context` (path below `context.` → transient?), `traits` (paths
    below `traits.`) and `events` (event atom name → its property paths). `texts` names the text
    fields of `"context"`, `"traits"` and each event atom, by the same paths; `redactor` redacts them.
    `identifiers` are the traits that hold identifiers: the only strings kept without a look for an
    address, phone or card number (the profile seals them; the catalog allows identifiers nowhere
    else that is stored)."""
    texts = texts or {}
    context_shape = build_shape(context, texts.get("context")) | dict.fromkeys(CONSENT_FIELDS, VERBATIM)
    base: dict[str, Rule] = dict.fromkeys(SYSTEM_FIELDS, VERBATIM)
    base["context"] = Rule(fields=MappingProxyType(context_shape))
    base["properties"] = Rule(fields=MappingProxyType({DECISION_ID: VERBATIM}))

    def with_properties(
        properties: Iterable[str],
        container: str = "properties",
        text: Mapping[str, TextKind] | None = None,
        sealed: Iterable[str] = (),
    ) -> Shape:
        shape = build_shape(dict.fromkeys(properties, False), text, sealed)
        if container == "properties":
            shape[DECISION_ID] = VERBATIM
        top = dict(base)
        top[container] = Rule(fields=MappingProxyType(shape))
        return MappingProxyType(top)

    event_shapes = {name: with_properties(props, text=texts.get(name)) for name, props in events.items()}
    by_type: dict[str, Shape] = {"": MappingProxyType(dict(base)), "alias": MappingProxyType(dict(base))}
    by_type["identify"] = with_properties(traits, "traits", texts.get("traits"), identifiers)
    group = events.get(TYPE_EVENTS["group"], ())
    by_type["group"] = with_properties(group, "traits", texts.get(TYPE_EVENTS["group"]))
    for kind in ("page", "screen"):
        props = tuple(events.get(TYPE_EVENTS[kind], ()))
        own = texts.get(TYPE_EVENTS[kind]) or {}
        shape = dict(with_properties(props, text=own))
        # Segment repeats a page's name and category at the top level of the message.
        shape.update(
            {name: Rule(leaf=True, text=own.get(name)) for name in ("name", "category") if name in props}
        )
        by_type[kind] = MappingProxyType(shape)
    return MessageFilter(
        MappingProxyType(by_type), MappingProxyType(event_shapes), with_properties(()), redactor
    )


_SCALARS = frozenset({str, int, float, bool, type(None)})
"""The types a JSON scalar decodes to: a declared leaf keeps them without looking at its rule."""


class _Level:
    """One shape compiled for the walk. Most values are scalars under declared leaves or system
    fields: two set lookups settle them (and for a string, one search for an `@` or seven digits);
    the rest go through their rule."""

    __slots__ = ("leaves", "rules", "verbatim")

    def __init__(self, shape: Shape, memo: dict[int, _Level]) -> None:
        self.verbatim = frozenset(key for key, rule in shape.items() if rule.verbatim)
        self.leaves = frozenset(
            key
            for key, rule in shape.items()
            if rule.leaf
            and not rule.transient
            and not rule.verbatim
            and rule.text is None
            and not rule.sealed
        )
        self.rules: dict[str, tuple[Rule, _Level | None, _Level | None]] = {
            key: (rule, _level(rule.fields, memo), _level(rule.elements, memo)) for key, rule in shape.items()
        }


@overload
def _level(shape: Shape, memo: dict[int, _Level]) -> _Level: ...
@overload
def _level(shape: Shape | None, memo: dict[int, _Level]) -> _Level | None: ...
def _level(shape: Shape | None, memo: dict[int, _Level]) -> _Level | None:
    if shape is None:
        return None
    found = memo.get(id(shape))  # the shapes outlive the memo: their ids are not reused meanwhile
    if found is None:
        found = memo[id(shape)] = _Level(shape, memo)
    return found


class _Walk:
    """What one message's walk found besides the kept fields."""

    __slots__ = ("dropped", "redacted", "redactor", "transient")

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.dropped: list[str] = []
        self.transient: list[str] = []
        self.redacted: list[str] = []

    def leaf(self, rule: Rule, value: object, path: str) -> object:
        """A scalar under a declared leaf, as it is kept."""
        if rule.sealed or not isinstance(value, str):
            return value
        kept, found = personal(value) if rule.text is None else self.redactor(rule.text, value)
        if found:
            self.redacted.extend(f"{what}:{path}" for what in found)
        return kept


def _filter_object(value: Mapping[str, Any], level: _Level, prefix: str, walk: _Walk) -> dict[str, Any]:
    dropped, transient = walk.dropped, walk.transient
    kept: dict[str, Any] = {}
    leaves, verbatim, rules = level.leaves, level.verbatim, level.rules
    for key, item in value.items():
        if key in leaves and item.__class__ in _SCALARS:
            if item.__class__ is str and may_hold_personal(item):
                item = walk.leaf(LEAF, item, f"{prefix}{key}")
            kept[key] = item
            continue
        if key in verbatim:
            kept[key] = item
            continue
        entry = rules.get(key)
        if entry is None:
            _name(f"{prefix}{key}", item, dropped, 0)
            continue
        rule, fields, elements = entry
        if rule.transient:
            transient.append(f"{prefix}{key}")
        elif isinstance(item, dict):
            if fields is None:
                _name(f"{prefix}{key}", item, dropped, 0)
            else:
                kept[key] = _filter_object(item, fields, f"{prefix}{key}.", walk)
        elif isinstance(item, list):
            kept[key] = _filter_list(item, rule, elements, f"{prefix}{key}", walk)
        elif rule.leaf:
            kept[key] = walk.leaf(rule, item, f"{prefix}{key}")
        else:
            dropped.append(f"{prefix}{key}")
    return kept


def _filter_list(items: list[Any], rule: Rule, elements: _Level | None, path: str, walk: _Walk) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict) and elements is not None:
            kept.append(_filter_object(item, elements, f"{path}[].", walk))
        elif rule.leaf and not isinstance(item, dict | list):
            kept.append(walk.leaf(rule, item, path))
        else:
            _name(f"{path}[]", item, walk.dropped, 0)
    return kept


def _name(path: str, value: object, dropped: list[str], depth: int) -> None:
    """Name the leaves of a dropped value, so that counts say which field was undeclared."""
    if depth < _MAX_NAMED_DEPTH and isinstance(value, dict) and value:
        for key, item in value.items():
            _name(f"{path}.{key}", item, dropped, depth + 1)
    elif (
        depth < _MAX_NAMED_DEPTH
        and isinstance(value, list)
        and any(isinstance(i, dict | list) for i in value)
    ):
        for item in value:
            _name(f"{path}[]", item, dropped, depth + 1)
    else:
        dropped.append(path)
