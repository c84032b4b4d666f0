"""The walk's steps when serving: the condition language answers whether an audience matches,
assignment which variation a subject gets, the sandboxed renderer what the content says.

    walk ──matches──▶ the experience's compiled condition over the SubjectView (none: everyone)
         ──assign───▶ assignment.assign(allocation, unit, may hash the anonymous id?)
         ──render───▶ Renderer.render (e-mail placements: render_email, which keeps the e-mail's shape)

Pure: built per placement from the lineup (plain data), the subject's hashing unit and Allowance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

from tactful.decide import assignment
from tactful.decide.conditions import Match
from tactful.decide.lineup import Lineup
from tactful.decide.walk import Channel, Drawn, Experience, Matched, Rendered, Variation
from tactful.render import JSON, Renderer, render_email


@dataclass(frozen=True)
class ServingSteps:
    lineup: Lineup
    renderer: Renderer
    unit: assignment.Unit | None
    device_identifiers: bool
    """The Allowance lets a device identifier be read: an anonymous id may be hashed."""
    channel: Channel = Channel.WEB
    outcomes: dict[str, Match] = field(default_factory=dict)
    """What each audience the walk evaluated answered, by experience key: counting the audiences
    held to k that this subject matches reads them instead of evaluating them again."""

    def matches(self, experience: Experience, view: Mapping[str, object]) -> Matched:
        condition = self.lineup.conditions.get(experience.key)
        if condition is None:
            return Matched(True)
        outcome = condition.evaluate(view)
        self.outcomes[experience.key] = outcome.match
        return Matched(
            outcome.match is Match.MATCH,
            withheld=outcome.match is Match.WITHHELD,
            atoms_read=frozenset(outcome.atoms_read),
        )

    def assign(self, experience: Experience, view: Mapping[str, object]) -> Drawn:
        allocation = self.lineup.allocations[experience.key]
        outcome = assignment.assign(allocation, self.unit, may_hash_anonymous_id=self.device_identifiers)
        if isinstance(outcome, assignment.Assigned):
            chosen = next(v for v in experience.variations if v.key == outcome.variation)
            return Drawn(allocation, outcome, chosen)
        return Drawn(allocation, outcome)

    def render(self, variation: Variation, view: Mapping[str, object]) -> Rendered:
        content = cast(JSON, variation.content)
        if self.channel is Channel.EMAIL:
            result = render_email(self.renderer, content, variation.templates, view)
        else:
            result = self.renderer.render(content, variation.templates, view)
        if not result.rendered:
            return Rendered(None, frozenset(result.atoms_read))
        return Rendered(result.content, frozenset(result.atoms_read))
