"""One visit of one simulated visitor, through the public API as a shop would drive it.

    the page (write key) ── first visit: the banner's answer ──▶ PUT /v1/consent (Sec-GPC if set)
        │ landing page, an age gate's answer (minors), sign-up or sign-in with a subject token
        ▼ POST /v1/batch
    the shop's backend (server key) ──▶ POST /v1/decide: home_hero, greeting, picks
        ▼ for each answer, a click or not: the chance depends on the visitor and on what was shown
    the page ── Promotion Clicked / Product Clicked with properties.decision_id, browsing, perhaps an
        │       order (its decision_id: the decision clicked), now and then "why am I seeing this?"
        ▼ POST /v1/batch

Every message carries the time it happened in the simulated visit (its `timestamp`); the engine
stamps a decision with the time it was asked for. Random draws come from a generator seeded per
visit and are made in the same order whatever the engine answers, so that one run's plan is the
next run's with the same seed.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tactful.demo import behaviour
from tactful.demo.shop import CATEGORIES, Product
from tactful.demo.tally import Shown, Tally
from tactful.demo.visitors import PURPOSES, Choice, Visitor
from tactful.sdk import AsyncClient, Decision, EventOutcome
from tactful.sdk.errors import APIError

PLACEMENTS = ("home_hero", "greeting", "picks")
SHOP_URL = "https://shop.example.com"
NOTICE_VERSION = "2026-11"
EXPLANATION_SHARE = 0.02
"""How often a visitor asks "why am I seeing this?" about a decision."""

TokenMint = Callable[[str], str]
"""A user id ──▶ a subject token for it, as the shop's backend issues one at sign-in."""


@dataclass(frozen=True)
class Shop:
    """What every visit shares: the products, the backend's client and how tokens are minted."""

    products: Mapping[str, tuple[Product, ...]]
    backend: AsyncClient
    mint: TokenMint
    tally: Tally


class Visit:
    """The messages and calls of visit number `number` of `visitor`, starting at `at`."""

    def __init__(
        self, shop: Shop, visitor: Visitor, number: int, at: datetime, *, seed: int, run: int
    ) -> None:
        self.shop, self.visitor, self.number = shop, visitor, number
        self.rng = random.Random(f"tactful-simulate:{seed}:{run}:visit:{visitor.index}:{number}")
        self.clock = at
        self.user_id: str | None = None
        self.token: str | None = None
        self.path = "/"
        self.clicks: dict[str, Shown] = {}
        """Click events sent, by message id: what the collection's answer is counted against."""

    # -- helpers --------------------------------------------------------------------------------

    def _tick(self, low: float = 2.0, high: float = 40.0) -> datetime:
        self.clock += timedelta(seconds=self.rng.uniform(low, high))
        return self.clock

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _context(self) -> dict[str, Any]:
        v = self.visitor
        context: dict[str, Any] = {
            "locale": v.locale,
            "device": {"type": v.device},
            "location": {"country": v.country, "region": v.region},
            "page": {"path": self.path, "url": SHOP_URL + self.path},
        }
        if v.gpc:
            context["gpc"] = True
        return context

    def _ids(self) -> dict[str, str | None]:
        return {"anonymous_id": self.visitor.anonymous_id, "user_id": self.user_id}

    def _page(self, browser: AsyncClient, path: str, name: str, category: str | None = None) -> None:
        self.path = path
        properties: dict[str, Any] = {"path": path, "url": SHOP_URL + path, "name": name}
        if category:
            properties["category"] = category
        browser.page(
            name, anonymous_id=self.visitor.anonymous_id, user_id=self.user_id, properties=properties,
            context=self._context(),
            message_id=self._id(), timestamp=self._tick(),
        )  # fmt: skip

    def _track(self, browser: AsyncClient, event: str, properties: dict[str, Any]) -> str:
        return browser.track(
            event, **self._ids(), properties=properties, context=self._context(),
            message_id=self._id(), timestamp=self._tick(2, 25),
        )  # fmt: skip

    async def _flush(self, browser: AsyncClient) -> list[EventOutcome]:
        outcomes = await browser.flush()
        self.shop.tally.outcomes(o.status for o in outcomes)
        for outcome in outcomes:
            if outcome.message_id in self.clicks:
                self.shop.tally.clicks_answered[outcome.status] += 1
        return outcomes

    # -- the visit ------------------------------------------------------------------------------

    async def run(self, browser: AsyncClient) -> None:
        v, rng = self.visitor, self.rng
        if self.number == 0:
            await self._banner(browser)
        landing = rng.random()
        if landing < 0.4:
            self._page(browser, "/", "Home")
        else:
            category = v.favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
            self._page(browser, f"/c/{category}", "Category", category)
        if self.number == 0 and v.minor:
            # The shop's age gate: a younger age is a claim that only restricts, so the page may send it.
            browser.identify(
                anonymous_id=v.anonymous_id, traits={"age_range": v.age_range}, context=self._context(),
                message_id=self._id(), timestamp=self._tick(),
            )  # fmt: skip
        signing_in = v.signed_up_by(self.number) and rng.random() < 0.8
        if v.signs_up_on == self.number:
            self._sign_up(browser)
        elif signing_in:
            self._sign_in(browser)
        if self.user_id is not None or (self.number == 0 and v.minor):
            # Who the visitor is (and their age) counts for the decision on this very page.
            await self._flush(browser)
        decisions = await self.shop.backend.decide(
            PLACEMENTS, user_id=self.user_id, anonymous_id=v.anonymous_id,
            context=self._context(), gpc=v.gpc,
        )  # fmt: skip
        await self._react(browser, decisions)
        await self._flush(browser)

    async def _banner(self, browser: AsyncClient) -> None:
        v, tally = self.visitor, self.shop.tally
        tally.visitors[v.choice] += 1
        tally.gpc += v.gpc
        tally.minors += v.minor
        if v.choice is Choice.NO_ANSWER:
            return
        ack = await browser.consent(
            anonymous_id=v.anonymous_id, purposes=PURPOSES[v.choice], source="banner",
            notice_version=NOTICE_VERSION, gpc=v.gpc,
        )  # fmt: skip
        # A page's answer lists an anonymous id's grants as unconfirmed (it is not told whether the id
        # speaks for someone); the ceilings of later decisions show what the engine recorded.
        tally.consent_recorded[v.choice] += len(ack.recorded) + len(ack.unconfirmed)
        tally.consent_refused[v.choice] += len(ack.refused)

    def _sign_up(self, browser: AsyncClient) -> None:
        v = self.visitor
        assert v.user_id is not None
        self._page(browser, "/account/signup", "Sign Up")
        self.user_id, self.token = v.user_id, self.shop.mint(v.user_id)
        browser.alias(
            user_id=v.user_id, previous_id=v.anonymous_id, context=self._context(),
            subject_token=self.token, message_id=self._id(), timestamp=self._tick(20, 90),
        )  # fmt: skip
        traits = {
            "first_name": v.first_name,
            "email": f"{v.first_name.lower()}.{v.index}@example.com".encode("ascii", "ignore").decode(),
            "age_range": v.age_range,
            "country": v.country,
        }
        browser.identify(
            **self._ids(), traits=traits, context=self._context(), subject_token=self.token,
            message_id=self._id(), timestamp=self._tick(1, 3),
        )  # fmt: skip
        self._track(browser, "Signed Up", {"method": "email"})

    def _sign_in(self, browser: AsyncClient) -> None:
        v = self.visitor
        assert v.user_id is not None
        self._page(browser, "/account/login", "Sign In")
        self.user_id, self.token = v.user_id, self.shop.mint(v.user_id)
        browser.identify(
            **self._ids(), traits={}, context=self._context(), subject_token=self.token,
            message_id=self._id(), timestamp=self._tick(5, 40),
        )  # fmt: skip
        self._track(browser, "Signed In", {"method": "email"})

    async def _react(self, browser: AsyncClient, decisions: list[Decision]) -> None:
        v, rng, tally = self.visitor, self.rng, self.shop.tally
        by_placement = {d.placement: d for d in decisions}
        clicked: Decision | None = None
        clicked_favourite = False
        for placement in PLACEMENTS:
            draw, why = rng.random(), rng.random()  # drawn whatever the engine answered
            decision = by_placement.get(placement)
            if decision is None:
                continue
            chance = behaviour.click_chance(
                v, placement=placement, variation=decision.variation, content=decision.content
            )
            ceiling = str(decision.explanation.get("ceiling", decision.level))
            # One click a visit: a click leads away from the page that showed the placements.
            shown = Shown(
                placement, decision.variation, decision.level, ceiling,
                clicked=clicked is None and draw < chance, choice=v.choice, gpc=v.gpc, minor=v.minor,
            )  # fmt: skip
            tally.decided(shown)
            if why < EXPLANATION_SHARE:
                await self._ask_why(browser, decision)
            if not shown.clicked:
                continue
            clicked = decision
            clicked_favourite = self._click(browser, decision, shown)
        greeted = by_placement.get("greeting")
        by_name = greeted is not None and greeted.variation == "by_name"
        self._browse(browser)
        chance = behaviour.order_chance(
            clicked=clicked is not None, greeted_by_name=by_name, clicked_favourite=clicked_favourite
        )
        if rng.random() < chance:
            self._order(browser, clicked)

    async def _ask_why(self, browser: AsyncClient, decision: Decision) -> None:
        try:
            await browser.explanation(decision.decision_id, locale=self.visitor.locale[:2])
        except APIError as error:
            self.shop.tally.explanations[error.status] += 1
        else:
            self.shop.tally.explanations[200] += 1

    def _click(self, browser: AsyncClient, decision: Decision, shown: Shown) -> bool:
        """Send the click on `decision`; whether it led to the visitor's favourite category."""
        content = decision.content if isinstance(decision.content, Mapping) else {}
        if decision.placement == "home_hero":
            properties: dict[str, Any] = {
                "promotion_id": decision.experience or "home_hero",
                "creative": decision.variation,
                "name": str(content.get("headline", "")),
                "position": decision.placement,
                "decision_id": decision.decision_id,
            }
            self.clicks[self._track(browser, "Promotion Clicked", properties)] = shown
            link = str(content.get("link", "/"))
            category = link.removeprefix("/c/") if link.startswith("/c/") else None
            self._page(browser, link, "Category" if category else "Landing", category)
            return category == self.visitor.favourite
        product = self._product(str(content.get("category", "")))
        properties = {
            "product_id": product.product_id,
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "brand": product.brand,
            "price": product.price_in("EUR"),
            "position": self.rng.randint(1, 8),
            "decision_id": decision.decision_id,
        }
        self.clicks[self._track(browser, "Product Clicked", properties)] = shown
        self._view(browser, product)
        return product.category == self.visitor.favourite

    def _product(self, category: str) -> Product:
        if category not in self.shop.products:  # "bestsellers": mostly what the visitor likes
            category = self.visitor.favourite if self.rng.random() < 0.5 else self.rng.choice(CATEGORIES)
        return self.rng.choice(self.shop.products[category])

    def _view(self, browser: AsyncClient, product: Product) -> None:
        self._page(browser, f"/p/{product.product_id}", "Product", product.category)
        self._track(
            browser,
            "Product Viewed",
            {"product_id": product.product_id, "sku": product.sku, "name": product.name,
             "category": product.category, "brand": product.brand, "price": product.price_in("EUR"),
             "currency": "EUR"},
        )  # fmt: skip

    def _browse(self, browser: AsyncClient) -> None:
        for _ in range(1 + min(5, int(self.rng.expovariate(1 / 1.5)))):
            liked = self.rng.random() < 0.7
            self._view(browser, self._product(self.visitor.favourite if liked else ""))

    def _order(self, browser: AsyncClient, clicked: Decision | None) -> None:
        product = self._product(self.visitor.favourite)
        price = product.price_in("EUR")
        cart = f"c-{self.rng.getrandbits(48):012x}"
        self._track(
            browser,
            "Product Added",
            {"product_id": product.product_id, "category": product.category, "price": price,
             "quantity": 1, "cart_id": cart},
        )  # fmt: skip
        order: dict[str, Any] = {
            "order_id": f"o-{self.rng.getrandbits(48):012x}",
            "total": round(price * 1.1, 2),
            "revenue": price,
            "currency": "EUR",
            "products": [
                {"product_id": product.product_id, "sku": product.sku, "category": product.category,
                 "price": price, "quantity": 1}
            ],
        }  # fmt: skip
        if clicked is not None:
            order["decision_id"] = clicked.decision_id
        self._track(browser, "Order Completed", order)
