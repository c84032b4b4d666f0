"""From validated sections to a `Catalog`: resolve names, derive levels, and check the rules that
relate fields and atoms. Every failure becomes a `CatalogProblem` naming the atom and the fix;
assembly goes on after one, so a single run reports all of them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import ValidationError

from tactful.catalog import categories as taxonomy
from tactful.catalog.categories import Category
from tactful.catalog.filtering import TYPE_EVENTS, snake_case
from tactful.catalog.inherit import assemble_computed
from tactful.catalog.levels import derive_level, fixed_at_one, highest
from tactful.catalog.model import (
    DEFAULT_NEVER_IN_COPY,
    EEA,
    SOURCE_PREFIX,
    TARGETING_PURPOSES,
    Atom,
    Catalog,
    CatalogProblem,
    Controller,
    DataSubjectGroup,
    Property,
    Recipient,
    Source,
)
from tactful.catalog.redact import TextKind
from tactful.catalog.retention import REQUEST_ONLY, Anchor, Expiry, RetentionError, parse_retention
from tactful.catalog.schemas import AtomSchema, CatalogSchema
from tactful.catalog.session import assemble_session
from tactful.types import Level, Purpose

_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]*"
_ATOM_NAME = re.compile(rf"^(context|traits|events|computed|session)(\.{_SEGMENT})+$")
_EVENT_ATOM = re.compile(r"^events\.[a-z0-9]+(_[a-z0-9]+)*$")
_PROPERTY = re.compile(r"^[A-Za-z_$][\w$-]*(\[\])?(\.[A-Za-z_$][\w$-]*(\[\])?)*$")
_URL_PARAMETER = re.compile(r"^[A-Za-z0-9_.~\[\]-]+\*?$|^\*$")
_YAML_ONE_TO_ONE = 61  # YAML 1.1 reads an unquoted 1:1 as the base-60 number 61
_FORMAT = "see the catalog format in the tactful.catalog package documentation"


@dataclass
class Lines:
    """Where things start in the file (1-based), for problems that point at a line."""

    sections: dict[str, int] = field(default_factory=dict)
    atoms: dict[str, int] = field(default_factory=dict)
    fields: dict[tuple[str, str], int] = field(default_factory=dict)
    properties: dict[tuple[str, str], int] = field(default_factory=dict)


def assemble(
    document: CatalogSchema, *, file: str, lines: Lines
) -> tuple[Catalog | None, list[CatalogProblem]]:
    """The catalog `document` describes, or `None` and the problems that prevent it."""
    return Assembler(document, file, lines).run()


def event_label(key: str) -> str:
    """The Segment event name of an atom without `event:` (`order_completed` → `Order Completed`)."""
    return " ".join(word.capitalize() for word in key.split("_"))


class Assembler:
    def __init__(self, document: CatalogSchema, file: str, lines: Lines) -> None:
        self.doc, self.file, self.lines = document, file, lines
        self.problems: list[CatalogProblem] = []
        self.categories: dict[str, Category] = dict(taxonomy.KNOWN)
        self.recipients: dict[str, Recipient] = {}
        self.schemas: dict[str, AtomSchema] = {}
        self.atoms: dict[str, Atom] = {}

    def report(self, message: str, fix: str, *, atom: str | None = None, key: str | None = None) -> None:
        line = None
        if atom is not None:
            line = self.lines.fields.get((atom, key)) if key else None
            line = line or self.lines.atoms.get(atom)
        elif key is not None:
            line = self.lines.sections.get(key)
        self.problems.append(CatalogProblem(self.file, message, fix, atom=atom, line=line))

    def run(self) -> tuple[Catalog | None, list[CatalogProblem]]:
        self._custom_categories()
        self._recipients()
        self._validate_atoms()
        for name, schema in self.schemas.items():
            if not name.startswith(("computed.", "session.")):
                self._plain(name, schema)
        assemble_computed(self)
        assemble_session(self)
        parameters = tuple(self._url_parameters())
        never_in_copy = self._never_in_copy()
        expiry = self._expiry()
        if self.problems:
            return None, self.problems
        c = self.doc.controller
        catalog = Catalog(
            atom_list=tuple(self.atoms[name] for name in self.doc.atoms if name in self.atoms),
            controller=Controller(c.name, c.contact, c.establishment, c.dpo, c.representative),
            data_subjects=tuple(DataSubjectGroup(s.name, s.description) for s in self.doc.data_subjects),
            recipients=self.recipients,
            source=self.file,
            url_parameters=parameters,
            never_in_copy=never_in_copy,
            expiry=expiry,
        )
        return catalog, []

    # -- sections --------------------------------------------------------------------------------

    def _custom_categories(self) -> None:
        for name, declared in self.doc.categories.items():
            if name in taxonomy.KNOWN:
                self.report(
                    f"category '{name}' is built in", "remove it from 'categories:'", key="categories"
                )
                continue
            parent = self.categories.get(declared.parent)
            if parent is None:
                self.report(
                    f"category '{name}' has an unknown parent '{declared.parent}'",
                    self.suggest(declared.parent, self.categories, "name a known category as 'parent'"),
                    key="categories",
                )
            elif not name.startswith(parent.name + "."):
                last = name.rsplit(".", 1)[-1]
                self.report(
                    f"category '{name}' is not below its parent '{parent.name}'",
                    f"rename it to '{parent.name}.{last}'",
                    key="categories",
                )
            else:
                self.categories[name] = taxonomy.child_of(parent, name, declared.description)

    def _recipients(self) -> None:
        for key, r in self.doc.recipients.items():
            if r.country is not None and r.country not in EEA and not r.safeguard:
                self.report(
                    f"recipient '{key}' is in {r.country}, outside the EEA: sending it data is a transfer",
                    'name the transfer\'s safeguard, e.g. "safeguard: adequacy decision" or '
                    '"safeguard: standard contractual clauses"',
                    key="recipients",
                )
            self.recipients[key] = Recipient(key, r.name, r.role, r.country, r.safeguard, r.description)

    def _validate_atoms(self) -> None:
        for name, raw in self.doc.atoms.items():
            if name.startswith("events.") and not _EVENT_ATOM.match(name):
                self.report(
                    "event atoms are named in snake_case, as collection maps event names",
                    f"rename it to 'events.{snake_case(name.partition('.')[2])}'",
                    atom=name,
                )
                continue
            if not _ATOM_NAME.match(name):
                self.report(
                    "an atom name is a source prefix and a field path",
                    "start it with 'context.', 'traits.', 'events.', 'computed.' or 'session.', "
                    "e.g. 'traits.name'",
                    atom=name,
                )
                continue
            try:
                schema = AtomSchema.model_validate({} if raw is None else raw)
            except ValidationError as exc:
                for error in exc.errors():
                    where = ".".join(str(part) for part in error["loc"]) or "the atom"
                    unknown = error["type"] == "extra_forbidden"
                    fix = "remove it, or check its spelling" if unknown else _FORMAT
                    key = str(error["loc"][0]) if error["loc"] else None
                    self.report(f"field '{where}': {error['msg']}", fix, atom=name, key=key)
                continue
            source = SOURCE_PREFIX[name.partition(".")[0]]
            if schema.source is not None and schema.source != source.value:
                self.report(
                    f"source '{schema.source}' does not match the name, which says '{source.value}'",
                    f"remove 'source:' or write 'source: {source.value}'",
                    atom=name,
                    key="source",
                )
            self.schemas[name] = schema

    # -- atoms -----------------------------------------------------------------------------------

    def _plain(self, name: str, schema: AtomSchema) -> None:
        source = SOURCE_PREFIX[name.partition(".")[0]]
        category = self.category(name, schema.category)
        purposes = self.purposes(name, schema)
        retention = self.retention(name, schema.retention, source)
        self._misplaced(name, schema, source)
        if category is None or retention is None:
            return
        properties = self._properties(name, schema, category) if source is Source.EVENT else ()
        every = (category, *(p.category for p in properties))
        derived = highest(derive_level(c, source, identifier=schema.identifier) for c in every)
        atom = Atom(
            name=name,
            source=source,
            category_info=category,
            level=self.level(name, schema, derived, every),
            purposes=purposes,
            retention=retention,
            description=schema.description,
            identifier=schema.identifier,
            device_identifier=schema.device_identifier,
            recipients=tuple(schema.recipients),
            explicit_consent=schema.explicit_consent,
            copy_forbidden=schema.copy_forbidden,
            properties=properties,
            essential=schema.essential,
            event=self._event_label(name, schema) if source is Source.EVENT else None,
            text=TextKind(schema.text) if schema.text is not None else None,
            retention_anchor=self._anchor(name, schema),
        )
        self.common_checks(atom)
        self.atoms[name] = atom

    def category(self, atom: str, name: str | None) -> Category | None:
        if name is None:
            self.report("no category", "add 'category:', e.g. 'category: user.behavior.browsing'", atom=atom)
            return None
        found = self.categories.get(name)
        if found is None:
            fix = self.suggest(name, self.categories, "declare it under 'categories:' with a known parent")
            self.report(f"unknown category '{name}'", fix, atom=atom, key="category")
        return found

    def purposes(self, atom: str, schema: AtomSchema) -> frozenset[Purpose]:
        if not schema.purposes:
            self.report(
                "no purposes", "list what it is used for under 'purposes:', e.g. [analytics]", atom=atom
            )
        known = {p.value: p for p in Purpose}
        for word in schema.purposes:
            if word not in known:
                fix = self.suggest(word, known, "use one of: " + ", ".join(known))
                self.report(f"unknown purpose '{word}'", fix, atom=atom, key="purposes")
        return frozenset(known[w] for w in schema.purposes if w in known)

    def retention(self, atom: str, raw: object, source: Source) -> timedelta | None:
        if raw is None:
            self.report("no retention", "add 'retention:', e.g. '13mo', '30d', '2y' or 'P30D'", atom=atom)
            return None
        try:
            period = parse_retention(raw)
        except RetentionError as exc:
            fix = "write a period such as '30d', '26w', '13mo', '2y' or ISO 8601 'P30D'"
            if isinstance(raw, int | float):
                fix += f" (a bare number has no unit: '{raw}d'?)"
            self.report(f"retention: {exc}", fix, atom=atom, key="retention")
            return None
        if period == REQUEST_ONLY and source is not Source.CONTEXT:
            self.report(
                "only request context can be used for the request alone ('retention: request')",
                "give it a stored retention period such as '13mo'",
                atom=atom,
                key="retention",
            )
            return None
        return period

    def level(self, atom: str, schema: AtomSchema, derived: Level, categories: tuple[Category, ...]) -> Level:
        raw = "1:1" if schema.level == _YAML_ONE_TO_ONE else schema.level
        if raw is None:
            return derived
        levels = {level.value: level for level in Level}
        declared = levels.get(str(raw).strip())
        if declared is None:
            self.report(
                f"unknown level '{raw}'", 'write one of "' + '", "'.join(levels) + '" (quoted)', atom=atom
            )
            return derived
        pinned = any(fixed_at_one(c, identifier=schema.identifier) for c in categories)
        if pinned and declared.rank < Level.ONE.rank:
            self.report(
                f"level '{declared}' is below 1:1 for an identifier or a special or sensitive category",
                "remove 'level:' (it derives 1:1) or set it to \"1:1\"",
                atom=atom,
                key="level",
            )
            return Level.ONE
        return declared

    def common_checks(self, atom: Atom) -> None:
        targeting = sorted(p.value for p in atom.purposes & TARGETING_PURPOSES)
        for category in atom.categories:
            if category.special and targeting and not atom.explicit_consent:
                self.report(
                    f"category '{category.name}' is a special category and may be used for targeting",
                    "add 'explicit_consent: true' or remove the targeting purposes",
                    atom=atom.name,
                )
        if atom.essential and Purpose.ESSENTIAL not in atom.purposes:
            self.report("an essential event must list the purpose 'essential'", "add it to 'purposes:'",
                        atom=atom.name, key="essential")  # fmt: skip
        if atom.source is Source.EVENT:
            for c in atom.categories:
                if c.direct_identifier:
                    self.report(
                        f"category '{c.name}' is a direct identifier, and events are stored unencrypted",
                        "send it as an identify trait with 'identifier: true' instead",
                        atom=atom.name,
                    )
        elif atom.category_info.direct_identifier and not atom.identifier:
            self.report(
                f"category '{atom.category}' is a direct identifier",
                "add 'identifier: true' so that it is encrypted at rest",
                atom=atom.name,
            )
        if atom.source is Source.CONTEXT and atom.identifier and atom.stored:
            self.report(
                "a direct identifier in the request context would be stored unencrypted with events",
                "set 'retention: request', or collect it as an identify trait",
                atom=atom.name,
            )
        for key in atom.recipients:
            if key not in self.recipients:
                fix = self.suggest(key, self.recipients, "declare it under 'recipients:'")
                self.report(f"unknown recipient '{key}'", fix, atom=atom.name, key="recipients")

    def _misplaced(self, name: str, schema: AtomSchema, source: Source) -> None:
        only = (
            ("properties", bool(schema.properties), Source.EVENT),
            ("essential", schema.essential, Source.EVENT),
            ("event", schema.event is not None, Source.EVENT),
            ("inputs", bool(schema.inputs), Source.COMPUTED),
            ("retention_anchor", schema.retention_anchor is not None, Source.EVENT),
            ("session", schema.session is not None, Source.SESSION),
        )
        for key, present, allowed in only:
            if present and source is not allowed:
                self.report(
                    f"'{key}' applies only to {allowed.value} atoms", f"remove '{key}'", atom=name, key=key
                )
        if schema.text is not None and source not in (Source.CONTEXT, Source.TRAIT):
            where = "mark the properties that hold text" if source is Source.EVENT else "remove 'text'"
            self.report(
                "'text' applies to context and trait atoms, and to the properties of event atoms",
                where, atom=name, key="text",
            )  # fmt: skip

    def _properties(self, atom: str, schema: AtomSchema, category: Category) -> tuple[Property, ...]:
        declared = schema.properties
        items = dict.fromkeys(declared) if isinstance(declared, list) else declared
        found: list[Property] = []
        for prop, spec in items.items():
            line = self.lines.properties.get((atom, prop))
            if not _PROPERTY.match(prop):
                self.problems.append(
                    CatalogProblem(self.file, f"property '{prop}' is not a field path",
                                   "write names like 'price' or 'products[].sku'", atom=atom, line=line)
                )  # fmt: skip
                continue
            own = category
            if spec is not None and spec.category is not None:
                looked_up = self.category(atom, spec.category)
                if looked_up is None:
                    continue
                own = looked_up
            text = TextKind(spec.text) if spec is not None and spec.text is not None else None
            reference = spec is not None and spec.reference
            found.append(Property(prop, own, spec.description if spec is not None else "", text, reference))
        return tuple(found)

    def _url_parameters(self) -> list[str]:
        kept = []
        for name in self.doc.url_parameters:
            if _URL_PARAMETER.match(name):
                kept.append(name)
            else:
                self.report(
                    f"url parameter '{name}' is not a parameter name",
                    "write a name such as 'utm_source', or a prefix ending in '*' such as 'utm_*'",
                    key="url_parameters",
                )
        return kept

    def _never_in_copy(self) -> tuple[str, ...]:
        declared = self.doc.never_in_copy
        if declared is None:
            return DEFAULT_NEVER_IN_COPY
        for name in declared:
            if name not in self.categories:
                stem = name.removesuffix(".*")
                if stem != name and stem in self.categories:
                    fix = f"write '{stem}': an entry covers every category below it"
                else:
                    fix = self.suggest(name, self.categories, "name a built-in or declared category")
                self.report(f"never_in_copy names an unknown category '{name}'", fix, key="never_in_copy")
        return tuple(dict.fromkeys(declared))

    def _anchor(self, name: str, schema: AtomSchema) -> Anchor:
        if schema.retention_anchor is None:
            return Anchor.EACH
        try:
            return Anchor(schema.retention_anchor)
        except ValueError:
            self.report(
                f"unknown retention_anchor '{schema.retention_anchor}'",
                "write 'each' (from each row, the default) or 'latest' (from the subject's latest row)",
                atom=name,
                key="retention_anchor",
            )
            return Anchor.EACH

    def _expiry(self) -> dict[str, Expiry]:
        actions = {e.value: e for e in Expiry}
        found: dict[str, Expiry] = {}
        for name, word in self.doc.expiry.items():
            category = self.categories.get(name)
            action = actions.get(word)
            if category is None:
                fix = self.suggest(name, self.categories, "name a built-in or declared category")
                self.report(f"expiry names an unknown category '{name}'", fix, key="expiry")
            elif action is None:
                self.report(f"expiry of '{name}' is '{word}'", "write 'delete' or 'anonymise'", key="expiry")
            elif action is Expiry.ANONYMISE and category.special:
                self.report(
                    f"'{name}' is a special category: its rows are deleted when they expire",
                    f"write '{name}: delete' or remove the entry",
                    key="expiry",
                )
            else:
                found[name] = action
        return found

    def _event_label(self, name: str, schema: AtomSchema) -> str:
        key = name.partition(".")[2]
        kind = next((k for k, atom in TYPE_EVENTS.items() if atom == name), None)
        if schema.event is None:
            return kind or event_label(key)
        if kind is None and snake_case(schema.event) != key:
            self.report(
                f"event '{schema.event}' maps to 'events.{snake_case(schema.event)}', not to this atom",
                f"rename the atom to 'events.{snake_case(schema.event)}' or fix 'event:'",
                atom=name,
                key="event",
            )
        return schema.event

    def suggest(self, word: str, known: Mapping[str, object], otherwise: str) -> str:
        guess = taxonomy.closest(word, known)
        return f"did you mean '{guess}'?" if guess else otherwise
