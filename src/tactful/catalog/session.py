"""Session atoms: what the current session's events say, kept as counters while it lasts (`1:some`).

    session.outdoor_views:                 # a name of its own, read by conditions as it is
      session:
        event: events.product_viewed       # the event atom followed
        measure: count                     # count | last | since
        by: category                       # count per value of this declared property
      description: products viewed in this session, per category

`count` without `by` is how many such events arrived in the session; with `by`, how many per value
of the property, as `[{"value": "outdoor", "count": 3}, ...]` (a condition reads it with
`$elemMatch`). `last` is the property's value on the latest one, `since` the whole seconds since it.

A session atom follows its event atom: it serves `personalization.behavioral` only (the event must
list that purpose, or nothing could ever feed it), its category is the event's or the property's,
its level derives from that category at the `1:some` base, and it reads a device identifier or
needs explicit consent when its event does. It lives as long as the session (30 minutes without an
event, `SESSION_TIMEOUT`): `retention` is not given, and a `window` longer than the session is
refused, since behaviour across sessions is a `1:few` profile. Free-text and URL properties and
direct identifiers are never counted: only values of ordinary declared properties are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tactful.catalog.levels import derive_level
from tactful.catalog.model import SESSION_TIMEOUT, Atom, AtomInput, Measure, SessionSpec, Source
from tactful.catalog.retention import RetentionError, parse_retention
from tactful.catalog.schemas import AtomSchema, SessionSchema
from tactful.types import Purpose

if TYPE_CHECKING:
    from tactful.catalog.assemble import Assembler

SESSION_PURPOSES = frozenset({Purpose.BEHAVIORAL})
_MINUTES = int(SESSION_TIMEOUT.total_seconds() // 60)
_NOT_HERE = ("identifier", "recipients", "essential", "event", "text", "inputs", "properties", "retention")


def assemble_session(assembler: Assembler) -> None:
    """Build every session atom (after the event atoms they follow)."""
    for name, schema in assembler.schemas.items():
        if name.startswith("session."):
            _session(assembler, name, schema)


def _session(assembler: Assembler, name: str, schema: AtomSchema) -> None:
    spec = schema.session
    if spec is None:
        assembler.report(
            "a session atom says which event it follows",
            "add 'session: {event: events.product_viewed, measure: count}'",
            atom=name,
        )
        return
    for key in _NOT_HERE:
        if key in schema.model_fields_set:
            fix = f"remove '{key}'" + (
                f" (it lives as long as the session: {_MINUTES} minutes without an event)"
                if key == "retention"
                else ""
            )
            assembler.report(f"'{key}' does not apply to a session atom", fix, atom=name, key=key)
    if not _window_fits(assembler, name, spec):
        return
    event = assembler.atoms.get(spec.event)
    if event is None or event.source is not Source.EVENT:
        fix = assembler.suggest(
            spec.event, assembler.atoms, "name a declared event atom, e.g. events.page_viewed"
        )
        assembler.report(f"'{spec.event}' is not a declared event atom", fix, atom=name, key="session")
        return
    if Purpose.BEHAVIORAL not in event.purposes:
        assembler.report(
            f"'{spec.event}' is not collected for personalization.behavioral, so nothing could feed it",
            f"add personalization.behavioral to the purposes of '{spec.event}', or follow another event",
            atom=name,
            key="session",
        )
        return
    purposes = frozenset(Purpose(p) for p in schema.purposes if p in Purpose._value2member_map_)
    if schema.purposes and purposes != SESSION_PURPOSES:
        assembler.report(
            "a session atom serves personalization.behavioral only (1:some decisions in this session)",
            "remove 'purposes:' or write 'purposes: [personalization.behavioral]'",
            atom=name,
            key="purposes",
        )
        return
    measure = Measure(spec.measure)
    category = event.category_info
    if spec.by is not None:
        if measure is Measure.SINCE:
            assembler.report(
                "'since' measures the event, not a property", "remove 'by'", atom=name, key="session"
            )
            return
        prop = event.find_property(spec.by)
        if prop is None:
            known = {p.name: p for p in event.properties}
            fix = assembler.suggest(
                spec.by, known, "name one of: " + ", ".join(known) if known else "declare it"
            )
            assembler.report(
                f"'{spec.event}' declares no property '{spec.by}'", fix, atom=name, key="session"
            )
            return
        if prop.text is not None or prop.category.direct_identifier:
            what = "a direct identifier" if prop.category.direct_identifier else f"{prop.text} text"
            assembler.report(
                f"property '{spec.by}' is {what}: its values are never counted, since they can name a "
                "person or carry anything a visitor typed",
                "count by a property with a small set of values, such as a category",
                atom=name,
                key="session",
            )
            return
        category = prop.category
    elif measure is Measure.LAST:
        assembler.report("'last' keeps a property's value", "add 'by: <property>'", atom=name, key="session")
        return
    derived = derive_level(category, Source.SESSION, inputs=(event.level,) if spec.by is None else ())
    atom = Atom(
        name=name,
        source=Source.SESSION,
        category_info=category,
        level=assembler.level(name, schema, derived, (category,)),
        purposes=SESSION_PURPOSES,
        retention=SESSION_TIMEOUT,
        description=schema.description,
        device_identifier=schema.device_identifier or event.device_identifier,
        explicit_consent=schema.explicit_consent or event.explicit_consent,
        copy_forbidden=schema.copy_forbidden or event.copy_forbidden,
        inputs=(AtomInput(event.name, spec.by),),
        session=SessionSpec(event.name, measure, spec.by),
    )
    assembler.common_checks(atom)
    assembler.atoms[name] = atom


def _window_fits(assembler: Assembler, name: str, spec: SessionSchema) -> bool:
    raw = spec.window
    if raw is None or raw == "session":
        return True
    try:
        window = parse_retention(raw)
    except RetentionError as exc:
        assembler.report(
            f"window: {exc}", "write 'window: session', or leave it out", atom=name, key="session"
        )
        return False
    if window > SESSION_TIMEOUT:
        assembler.report(
            f"a window of {raw} is longer than the session ({_MINUTES} minutes without an event): "
            "behaviour across sessions is a 1:few profile atom, not a 1:some session atom",
            "leave 'window' out to count within the session, or declare a computed atom "
            "(purpose personalization.predictive) over the event",
            atom=name,
            key="session",
        )
        return False
    if window < SESSION_TIMEOUT:
        assembler.report(
            f"a window of {raw} is shorter than the session: counters keep whole sessions",
            "leave 'window' out, and read how recent the event was with a 'since' atom",
            atom=name,
            key="session",
        )
        return False
    return True
