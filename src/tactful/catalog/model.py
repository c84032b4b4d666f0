"""The loaded, validated catalog: engine types the rest of Tactful reads. Build one with
`tactful.catalog.loader.load_catalog`; nothing here parses YAML or checks rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from tactful.catalog.categories import Category
from tactful.catalog.filtering import FilterResult, MessageFilter, compile_filter, event_atom_name
from tactful.catalog.redact import Redactor, TextKind
from tactful.catalog.retention import REQUEST_ONLY, Anchor, Expiry
from tactful.types import Level, Purpose


class Source(StrEnum):
    """Where an atom's values come from; the prefix of its name says which."""

    CONTEXT = "context"
    """The request's context: used for this request, stored only with an event if its retention says so."""
    TRAIT = "trait"
    """An identify trait, stored in the profile."""
    EVENT = "event"
    """A track, page, screen or group call and the properties it carries."""
    COMPUTED = "computed"
    """Derived by the engine from other atoms (its `inputs`)."""
    SESSION = "session"
    """Counted from this session's events as they arrive (`session:`): never stored in the database."""


SOURCE_PREFIX: Mapping[str, Source] = MappingProxyType(
    {
        "context": Source.CONTEXT,
        "traits": Source.TRAIT,
        "events": Source.EVENT,
        "computed": Source.COMPUTED,
        "session": Source.SESSION,
    }
)

SESSION_TIMEOUT = timedelta(minutes=30)
"""A session ends after this long without an event; its counters go with it. Behaviour over a longer
window reaches across sessions: a `1:few` profile atom, never a `1:some` session atom."""


class Measure(StrEnum):
    """What a session atom keeps about one kind of event within the session."""

    COUNT = "count"
    """How many arrived (an integer); with `by`, how many per value of the property, as a list of
    `{"value": ..., "count": n}`, most frequent first."""
    LAST = "last"
    """The value of the property `by` on the latest one."""
    SINCE = "since"
    """Whole seconds since the latest one (recency)."""


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """How a session atom follows its event atom: `measure` over `event`, per value of `by`."""

    event: str
    """The event atom counted (`events.product_viewed`)."""
    measure: Measure
    by: str | None = None
    """A declared property of the event atom (`category`, `products[].category`)."""


TARGETING_PURPOSES: frozenset[Purpose] = frozenset(
    {
        Purpose.SEGMENTS,
        Purpose.BEHAVIORAL,
        Purpose.PREDICTIVE,
        Purpose.INDIVIDUAL,
        Purpose.MARKETING_EMAIL,
        Purpose.SALE_OR_SHARE,
    }
)
"""Purposes that single a person out for different treatment (Invariant 6 guards them)."""

EEA: frozenset[str] = frozenset(
    {
        "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
        "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
    }
)  # fmt: skip
"""The European Economic Area: a recipient elsewhere means a transfer (GDPR Chapter V)."""

DEFAULT_NEVER_IN_COPY: tuple[str, ...] = ("user.location.precise", "user.sensitive")
"""The categories no template may put into copy unless a catalog says otherwise (`never_in_copy`):
where a person is, and the special categories. Copy is shown, forwarded and screenshotted; "Feel
better soon, Ada: 20% off allergy relief" tells whoever reads it something about Ada's health."""


def covers(entry: str, category: str) -> bool:
    """Whether the `never_in_copy` entry `entry` covers `category`: itself and every category below
    it (`user.sensitive` covers `user.sensitive.health` and a catalog's `user.sensitive.health.x`)."""
    return category == entry or category.startswith(entry + ".")


@dataclass(frozen=True, slots=True)
class Property:
    """One property an event atom carries (`products[].sku`), with its own category."""

    name: str
    category: Category
    description: str = ""
    text: TextKind | None = None
    """Free text or a URL: redacted as it is stored (`redact`)."""
    reference: bool = False
    """A number of a record kept elsewhere (an order or cart id) that leads back to the person
    there: removed when the row is anonymised."""


@dataclass(frozen=True, slots=True)
class AtomInput:
    """One input of a computed atom: an atom, or one property of an event atom."""

    atom: str
    property: str | None = None

    def __str__(self) -> str:
        return self.atom if self.property is None else f"{self.atom}.{self.property}"


@dataclass(frozen=True, slots=True)
class Atom:
    """One kind of data point about a subject (DESIGN §1)."""

    name: str
    source: Source
    category_info: Category
    level: Level
    purposes: frozenset[Purpose]
    retention: timedelta
    description: str = ""
    identifier: bool = False
    device_identifier: bool = False
    recipients: tuple[str, ...] = ()
    explicit_consent: bool = False
    copy_forbidden: bool = False
    inputs: tuple[AtomInput, ...] = ()
    properties: tuple[Property, ...] = ()
    essential: bool = False
    event: str | None = None
    """For event atoms, the Segment event name (`Order Completed`) or call type (`page`)."""
    text: TextKind | None = None
    """For context and trait atoms: free text or a URL, redacted as it is stored (`redact`)."""
    retention_anchor: Anchor = Anchor.EACH
    """For event atoms: whether the period runs from each row or from the subject's latest."""
    session: SessionSpec | None = None
    """For session atoms: which event they follow, and what they keep of it."""

    @property
    def category(self) -> str:
        return self.category_info.name

    @property
    def key(self) -> str:
        """The name without its source prefix: `first_name` for `traits.first_name`."""
        return self.name.partition(".")[2]

    @property
    def special(self) -> bool:
        return any(c.special for c in self.categories)

    @property
    def stored(self) -> bool:
        return self.retention > REQUEST_ONLY

    @property
    def categories(self) -> tuple[Category, ...]:
        """The atom's category and those of its properties, without repeats."""
        found = {self.category_info.name: self.category_info}
        for prop in self.properties:
            found.setdefault(prop.category.name, prop.category)
        return tuple(found.values())

    def find_property(self, name: str) -> Property | None:
        return next((p for p in self.properties if p.name == name), None)


@dataclass(frozen=True, slots=True)
class Controller:
    name: str
    contact: str
    establishment: str
    """ISO 3166-1 alpha-2 country of the main establishment."""
    dpo: str | None = None
    representative: str | None = None


@dataclass(frozen=True, slots=True)
class DataSubjectGroup:
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class Recipient:
    key: str
    name: str
    role: str
    country: str | None = None
    safeguard: str | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class CatalogProblem:
    """One thing wrong with a catalog file: where, which atom, what, and how to fix it."""

    file: str
    message: str
    fix: str = ""
    atom: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        subject = f" atom '{self.atom}':" if self.atom else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{where}:{subject} {self.message}{fix}"


@dataclass(frozen=True)
class PathNode:
    """The atoms declared below one object of a message, one key at a time: `location` leads to a
    node whose `country` holds the atom `context.location.country`. One walk of an object along its
    keys finds every declared atom in it, without a walk per atom."""

    atom: Atom | None = None
    below: Mapping[str, PathNode] = field(default_factory=dict)


def _tree(paths: tuple[tuple[tuple[str, ...], Atom], ...]) -> PathNode:
    def node(depth: int, here: list[tuple[tuple[str, ...], Atom]]) -> PathNode:
        atom = next((a for path, a in here if len(path) == depth), None)
        groups: dict[str, list[tuple[tuple[str, ...], Atom]]] = {}
        for path, a in here:
            if len(path) > depth:
                groups.setdefault(path[depth], []).append((path, a))
        return PathNode(atom, MappingProxyType({k: node(depth + 1, g) for k, g in groups.items()}))

    return node(0, list(paths))


@dataclass(frozen=True)
class Catalog:
    """The data map: every atom, the controller, and the compiled field filter."""

    atom_list: tuple[Atom, ...]
    controller: Controller
    data_subjects: tuple[DataSubjectGroup, ...] = ()
    recipients: Mapping[str, Recipient] = field(default_factory=dict)
    source: str = ""
    """The file the catalog was loaded from, for messages."""
    url_parameters: tuple[str, ...] = ()
    """The query parameters URL fields keep (`utm_*`: a trailing `*` matches any end)."""
    never_in_copy: tuple[str, ...] = DEFAULT_NEVER_IN_COPY
    """Categories (each with those below it) that no template may put into copy."""
    expiry: Mapping[str, Expiry] = field(default_factory=dict)
    """What expiry does to stored rows, by category (each with those below it); delete otherwise."""
    _atoms: Mapping[str, Atom] = field(init=False, repr=False, compare=False)
    _traits: Mapping[str, Atom] = field(init=False, repr=False, compare=False)
    _filter: MessageFilter = field(init=False, repr=False, compare=False)
    _context: tuple[tuple[tuple[str, ...], Atom], ...] = field(init=False, repr=False, compare=False)
    _context_tree: PathNode = field(init=False, repr=False, compare=False)
    _stored_context: tuple[tuple[tuple[str, ...], Atom], ...] = field(init=False, repr=False, compare=False)
    _session: tuple[Atom, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        atoms = MappingProxyType({a.name: a for a in self.atom_list})
        traits = MappingProxyType({a.key: a for a in self.atom_list if a.source is Source.TRAIT})
        compiled = compile_filter(
            context={a.key: not a.stored for a in self.atom_list if a.source is Source.CONTEXT},
            traits=traits.keys(),
            events={
                a.name: tuple(p.name for p in a.properties)
                for a in self.atom_list
                if a.source is Source.EVENT
            },
            texts=self._texts(),
            redactor=Redactor(self.url_parameters),
            identifiers=(key for key, atom in traits.items() if atom.identifier),
        )
        object.__setattr__(self, "_atoms", atoms)
        object.__setattr__(self, "_traits", traits)
        object.__setattr__(self, "_filter", compiled)
        context = tuple((tuple(a.key.split(".")), a) for a in self.atom_list if a.source is Source.CONTEXT)
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "_context_tree", _tree(context))
        object.__setattr__(self, "_stored_context", tuple((path, a) for path, a in context if a.stored))
        object.__setattr__(self, "_session", tuple(a for a in self.atom_list if a.source is Source.SESSION))

    def _texts(self) -> dict[str, dict[str, TextKind]]:
        texts: dict[str, dict[str, TextKind]] = {"context": {}, "traits": {}}
        for a in self.atom_list:
            if a.source is Source.EVENT:
                texts[a.name] = {p.name: p.text for p in a.properties if p.text is not None}
            elif a.source in (Source.CONTEXT, Source.TRAIT) and a.text is not None:
                texts["context" if a.source is Source.CONTEXT else "traits"][a.key] = a.text
        return texts

    # -- lookups ---------------------------------------------------------------------------------

    @property
    def atoms(self) -> Mapping[str, Atom]:
        """Every atom by name (`traits.email`, `events.order_completed`, ...)."""
        return self._atoms

    def atom(self, name: str) -> Atom:
        """The atom called `name`; `KeyError` if the catalog does not declare it."""
        try:
            return self._atoms[name]
        except KeyError:
            raise KeyError(f"the catalog declares no atom {name!r}") from None

    @property
    def trait_atoms(self) -> Mapping[str, Atom]:
        """Identify traits by their name in the message (`first_name` → `traits.first_name`)."""
        return self._traits

    @property
    def context_atoms(self) -> tuple[tuple[tuple[str, ...], Atom], ...]:
        """Every context atom, each with its path below `context` (`("location", "country")`)."""
        return self._context

    @property
    def context_tree(self) -> PathNode:
        """The context atoms as a tree of their paths below `context` (every decision reads its
        request's context along it)."""
        return self._context_tree

    @property
    def stored_context(self) -> tuple[tuple[tuple[str, ...], Atom], ...]:
        """The context atoms stored with events, each with its path below `context` (`("page", "url")`)."""
        return self._stored_context

    @property
    def identifier_traits(self) -> frozenset[str]:
        """Trait names whose values are direct identifiers (encrypted at rest)."""
        return frozenset(key for key, atom in self._traits.items() if atom.identifier)

    @property
    def essential_events(self) -> frozenset[str]:
        """Names of the event atoms needed to deliver the service (`events.order_completed`)."""
        return frozenset(a.name for a in self.atom_list if a.essential)

    @property
    def copy_forbidden(self) -> frozenset[str]:
        """Atoms that must never appear in rendered copy: marked `copy_forbidden`, or of a category
        that `never_in_copy` covers (through the atom's own category or one of its properties')."""
        return frozenset(
            a.name
            for a in self.atom_list
            if a.copy_forbidden or any(self.copy_rule(c.name) for c in a.categories)
        )

    def expiry_of(self, category: str) -> Expiry:
        """What expiry does to a row of `category`: the entry of `expiry` naming the closest
        category at or above it, else `delete`."""
        entries = [entry for entry in self.expiry if covers(entry, category)]
        return self.expiry[max(entries, key=len)] if entries else Expiry.DELETE

    def expiry_of_atom(self, atom: Atom) -> Expiry:
        """What expiry does to a stored row of `atom`: as its category says, except that a row of a
        special category is always deleted (a day, a product and a place can single out one of
        few people, and what they would reveal is the worst to reveal)."""
        return Expiry.DELETE if atom.special else self.expiry_of(atom.category)

    def copy_rule(self, category: str) -> str | None:
        """The `never_in_copy` entry that keeps `category` out of copy, if any."""
        return next((entry for entry in self.never_in_copy if covers(entry, category)), None)

    @property
    def purposes(self) -> frozenset[Purpose]:
        return frozenset(p for a in self.atom_list for p in a.purposes)

    @property
    def session_atoms(self) -> tuple[Atom, ...]:
        """The session atoms (`1:some`, fed by collection as events arrive, read from counters)."""
        return self._session

    def by_source(self, source: Source) -> tuple[Atom, ...]:
        return tuple(a for a in self.atom_list if a.source is source)

    def for_purpose(self, purpose: Purpose) -> tuple[Atom, ...]:
        return tuple(a for a in self.atom_list if purpose in a.purposes)

    def inputs_of(self, name: str) -> tuple[AtomInput, ...]:
        """What a computed atom is derived from (`computed.favorite_category` → product events)."""
        return self.atom(name).inputs

    def input_events(self, name: str) -> frozenset[str]:
        """The Segment event names whose messages feed a computed atom (`Order Completed`, ...)."""
        found = (self._atoms.get(i.atom) for i in self.inputs_of(name))
        return frozenset(a.event for a in found if a is not None and a.event is not None)

    def event_atom(self, message: Mapping[str, Any]) -> Atom | None:
        """The declared event atom a Segment message belongs to, if any."""
        name = event_atom_name(message.get("type"), message.get("event"))
        return self._atoms.get(name) if name is not None else None

    # -- the hot path ----------------------------------------------------------------------------

    def filter_message(self, message: Mapping[str, Any]) -> FilterResult:
        """Keep the declared and system fields of one Segment message; name what was dropped."""
        return self._filter.filter(message)
