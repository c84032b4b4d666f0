"""Small builders for decision tests: a SubjectView over chosen values, some of them withheld."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from tactful.policy import Allowance, Code, Reason, SubjectView
from tactful.types import Level

WITHHELD = Reason.of(Code.CONSENT_MISSING, purpose="personalization.individual", regime="gdpr")


def view_of(
    values: Mapping[str, object],
    *,
    withheld: Mapping[str, object] | None = None,
    permitted: Iterable[str] = (),
) -> SubjectView:
    """A view whose Allowance permits the atoms of `values` and `permitted` (absent unless in
    `values`) and refuses those of `withheld`, although the store holds values for them."""
    held = dict(withheld or {})
    allowed = (frozenset(values) | frozenset(permitted)) - held.keys()
    allowance = Allowance(
        ceiling=Level.ONE,
        decide_atoms=allowed,
        learn_atoms=allowed,
        purposes={},
        refusals=dict.fromkeys(held, WITHHELD),
        level_reasons={},
        may_learn=False,
    )
    stored = {name: value for name, value in held.items() if value is not None} | dict(values)
    return SubjectView(allowance, stored, allowed)
