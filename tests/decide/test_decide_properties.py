"""Invariants 1, 2 and 9 of DESIGN §3 for whole decisions: whatever the catalog, the consent and the
experiences, a decision reads only atoms of its Allowance, never answers above the Allowance's level,
always answers every placement, and its content holds no template syntax.

Everything on the way is the serving code: the Allowance comes from the gate over a folded ledger,
the lineup from `lineup.build` over published snapshots (levels computed from the catalog), and
`decisions.serve` walks it with `ServingSteps`: conditions compiled from generated documents over the
catalog's atoms, assignment's hashing, and the sandboxed renderer over templates with and without
fallbacks. Stored values include placeholder tokens and values JSON cannot hold.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tactful.catalog.model import Catalog, Source
from tactful.consent.fold import ConsentAction, ConsentEvent, fold
from tactful.decide import decisions, lineup
from tactful.decide.walk import Channel, Placement, Variation
from tactful.policy import (
    Allowance,
    ConsentSource,
    ProfileSnapshot,
    Regime,
    RequestSignals,
    SubjectFacts,
    build_view,
    evaluate,
)
from tactful.render import has_placeholder
from tests.decide.strategies import conditions, subject_values
from tests.policy.strategies import AT, PURPOSES, T0, catalogs, facts, ledgers, regime_sets, signals

LATER = AT + timedelta(hours=1)
PLACEMENTS = ("hero", "greeting", "footer")
_created = itertools.count()

tokens = st.sampled_from(["*|FNAME|*", "{{ x }}", "[FIRSTNAME]", "%%name%%", "${name}", "{% if %}"])
stored_values = st.one_of(subject_values, tokens, st.sampled_from(["Ada", "SE", "running"]))


def template(atom: str | None, form: int) -> str:
    """Template text reading `atom` with a fallback (forms 0-2) or without one (3-4)."""
    if atom is None:
        return "Hello"
    return (
        f"Hi {{{{ {atom} | default('there') }}}}!",
        f"{{% if {atom} %}}Picked for you{{% else %}}Picked for everyone{{% endif %}}",
        f"{{{{ {atom}.category | default('all') }}}} shoes",
        f"Hi {{{{ {atom} }}}}!",
        f"{{% for x in {atom} %}}{{{{ x }}}} {{% endfor %}}",
    )[form]


@dataclass(frozen=True)
class Atoms:
    """The catalog's atoms, and those the Allowance permits: experiences read either, mostly the
    permitted ones, so that many of them are candidates."""

    declared: tuple[str, ...]
    permitted: tuple[str, ...]

    def one(self, draw: st.DrawFn) -> str:
        if self.permitted and draw(st.integers(0, 3)):
            return draw(st.sampled_from(self.permitted))
        return draw(st.sampled_from(self.declared))


@st.composite
def audiences(draw: st.DrawFn, atoms: Atoms) -> dict[str, Any] | None:
    """None (everyone), a condition on whether one atom has a value, or any condition of the
    language over a few of the atoms."""
    shape = draw(st.integers(0, 2))
    if shape == 0:
        return None
    if shape == 1:
        return {atoms.one(draw): {"$exists": draw(st.booleans())}}
    keys = tuple(dict.fromkeys(atoms.one(draw) for _ in range(3)))
    found: dict[str, Any] = draw(conditions(2, keys=keys))
    return found


@st.composite
def variations(draw: st.DrawFn, atoms: Atoms, *, fallbacks_only: bool = False) -> dict[str, Any]:
    """A variation as a snapshot holds it: plain copy, and templates for some of its fields."""
    content: dict[str, Any] = {"title": "Welcome", "body_html": "<p>New in</p>", "tags": ["a", 1, True]}
    templates = {}
    for field in draw(st.sampled_from([(), ("title",), ("body_html",), ("title", "body_html")])):
        atom = atoms.one(draw) if draw(st.integers(0, 3)) else None
        templates[field] = template(atom, draw(st.integers(0, 2 if fallbacks_only else 4)))
    return {
        "key": "v",
        "content": content,
        "templates": templates,
        "weight": draw(st.sampled_from([1.0, 3.0])),
    }


@st.composite
def experiences(
    draw: st.DrawFn, key: str, placement: str, atoms: Atoms
) -> tuple[lineup.Published, dict[str, Any] | None]:
    """A published experience and its audience's condition (None: everyone)."""
    made = [draw(variations(atoms)) for _ in range(draw(st.integers(1, 3)))]
    for index, variation in enumerate(made):
        variation["key"] = f"{key}-{index}"
    audience = draw(audiences(atoms))
    window = draw(
        st.sampled_from([(None, None)] * 3 + [(None, AT), (LATER, None), (AT - timedelta(days=1), LATER)])
    )
    snapshot = {
        "placement": placement,
        "priority": draw(st.integers(0, 3)),
        "status": draw(st.sampled_from(["live", "live", "live", "paused"])),
        "starts_at": window[0].isoformat() if window[0] else None,
        "ends_at": window[1].isoformat() if window[1] else None,
        "holdout": draw(st.sampled_from([0.0, 0.0, 0.1, 0.5])),
        "strategy": "split" if len(made) > 1 else "rule",
        "significant_effect": draw(st.sampled_from([False, False, False, True])),
        "namespace": draw(st.sampled_from([None, None, "shared"])),
        "audience": key if audience is not None else None,
        "variations": made,
        "seed": f"seed-{key}",
    }
    created = AT - timedelta(days=10, minutes=next(_created))
    return lineup.Published(key, created, 1, snapshot), audience


@st.composite
def lineups(draw: st.DrawFn, catalog: Catalog, allowance: Allowance) -> lineup.Lineup:
    atoms = Atoms(tuple(sorted(catalog.atoms)), tuple(sorted(allowance.decide_atoms)))
    placements = {}
    published, audiences = [], {}
    for name in PLACEMENTS:
        default = draw(variations(atoms, fallbacks_only=True))
        channel = draw(st.sampled_from([Channel.WEB, Channel.APP]))
        placements[name] = Placement(
            name, channel, Variation("default", default["content"], 1.0, default["templates"])
        )
        for index in range(draw(st.integers(1, 4))):
            made, audience = draw(experiences(f"{name}-{index}", name, atoms))
            published.append(made)
            if audience is not None:
                audiences[made.key] = audience
    return lineup.build(
        placements, published, audiences, catalog=catalog, catalog_version="t", mark=(0, None)
    )


@st.composite
def profiles(draw: st.DrawFn, catalog: Catalog) -> ProfileSnapshot:
    """What the store holds (for atoms permitted or not, most of them) and what the request says."""
    held = [name for name in sorted(catalog.atoms) if draw(st.integers(0, 3))]
    stored = {name: draw(stored_values) for name in held}
    context = [a.name for a in catalog.atom_list if a.source is Source.CONTEXT and draw(st.booleans())]
    return ProfileSnapshot(values=stored, request={name: draw(stored_values) for name in context})


def strings(content: object) -> Iterator[str]:
    if isinstance(content, str):
        yield content
    elif isinstance(content, dict):
        for key, value in content.items():
            yield key
            yield from strings(value)
    elif isinstance(content, list):
        for value in content:
            yield from strings(value)


def has_null(content: object) -> bool:
    if content is None:
        return True
    if isinstance(content, dict):
        return any(has_null(v) for v in content.values())
    if isinstance(content, list):
        return any(has_null(v) for v in content)
    return False


FULL_GRANT = [ConsentEvent(ConsentAction.GRANTED, T0, ConsentSource.BANNER, purpose=p) for p in PURPOSES]
consents = st.one_of(ledgers, st.just(FULL_GRANT))
"""Any ledger, or every purpose granted (so that the upper levels are reached often)."""
subjects = st.one_of(facts(), st.just(SubjectFacts(age=30)))
ids = st.sampled_from([(None, None), ("user-1", None), (None, "anon-1"), ("user-2", "anon-2")])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(catalogs(), consents, regime_sets, subjects, signals, ids, st.data())
def test_a_decision_reads_only_its_allowance_stays_below_its_ceiling_and_always_answers_cleanly(
    catalog: Catalog,
    events: list[ConsentEvent],
    regimes: list[Regime],
    subject: SubjectFacts,
    request: RequestSignals,
    who: tuple[str | None, str | None],
    data: st.DataObject,
) -> None:
    allowance = evaluate(
        catalog=catalog, consent=fold(events), regimes=regimes, facts=subject, signals=request, at=LATER
    )
    view = build_view(allowance, data.draw(profiles(catalog)))
    served = data.draw(lineups(catalog, allowance))
    asked = tuple(data.draw(st.permutations(PLACEMENTS)))
    ask = decisions.Ask(asked, user_id=who[0], anonymous_id=who[1])

    decided = decisions.serve(
        lineup=served,
        placements=decisions.placements_of(served, asked),
        allowance=allowance,
        view=view,
        ask=ask,
        at=LATER,
        subject_id=uuid.uuid4(),
    )

    assert [s.answer.placement for s in decided.served] == list(asked)
    for one in decided.served:
        answer = one.answer
        assert answer.level <= allowance.ceiling
        assert answer.atoms_read <= allowance.decide_atoms
        assert answer.content not in (None, {}, [], "")
        assert not has_null(answer.content)
        assert not any(has_placeholder(text) for text in strings(answer.content))
        assert 0 < answer.propensity <= 1
        if answer.experience is not None:
            experience = next(
                e for e in served.placements[answer.placement].experiences if e.key == answer.experience
            )
            assert experience.atoms <= allowance.decide_atoms
            assert experience.level <= allowance.ceiling
    assert view.atoms_read <= allowance.decide_atoms
    for entry in decided.entries:
        assert set(entry.atoms_read) <= allowance.decide_atoms
        assert entry.level in {str(level) for level in type(allowance.ceiling) if level <= allowance.ceiling}
