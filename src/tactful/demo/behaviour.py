"""What simulated visitors prefer: the chance that they click what a placement shows them, and that
a visit ends in an order. Pure.

The chances depend on the visitor (country, device, favourite category) and on what was shown (the
variation and its content), so that the experiences have real, different effects to measure and to
learn: the Swedish free-delivery banner works on Swedes, the trail banner on outdoor fans, the
carousel on phones and the grid on desktops, and a row of the visitor's favourite category beats
the bestsellers. A greeting by name is not clicked, but visitors greeted by name order a little
more often.
"""

from __future__ import annotations

from collections.abc import Mapping

from tactful.demo.visitors import Visitor

BASE_CLICK: dict[str, float] = {"home_hero": 0.04, "picks": 0.05}
"""The chance of a click on a placement's default, for a visitor it means nothing special to."""
CLICKABLE = frozenset(BASE_CLICK)
ORDER_WITHOUT_CLICK = 0.03
ORDER_AFTER_CLICK = 0.12
NAME_GREETING_LIFT = 1.3
FAVOURITE_ORDER_LIFT = 1.5


def _layout(visitor: Visitor, layout: str) -> float:
    if layout == "carousel":
        return {"mobile": 1.8, "tablet": 1.2}.get(visitor.device, 0.7)
    return {"desktop": 1.5, "tablet": 1.0}.get(visitor.device, 0.9)


def click_chance(visitor: Visitor, *, placement: str, variation: str, content: object) -> float:
    """The chance that `visitor` clicks `placement` showing `variation` with `content`."""
    base = BASE_CLICK.get(placement)
    if base is None:
        return 0.0
    fields: Mapping[str, object] = content if isinstance(content, Mapping) else {}
    lift = 1.0
    if placement == "home_hero":
        if variation == "fri_frakt":
            lift = 3.5 if visitor.country == "SE" else 0.6
        elif variation == "trail":
            lift = 4.0 if visitor.favourite == "outdoor" else 1.3
        if visitor.device == "mobile":
            lift *= 0.85
    else:
        lift = _layout(visitor, str(fields.get("layout", "grid")))
        if fields.get("category") == visitor.favourite:
            lift *= 3.0
    return min(0.9, base * lift)


def order_chance(*, clicked: bool, greeted_by_name: bool, clicked_favourite: bool) -> float:
    """The chance that a visit ends in an order, given what happened on the landing page."""
    chance = ORDER_AFTER_CLICK if clicked else ORDER_WITHOUT_CLICK
    if greeted_by_name:
        chance *= NAME_GREETING_LIFT
    if clicked_favourite:
        chance *= FAVOURITE_ORDER_LIFT
    return min(0.9, chance)
