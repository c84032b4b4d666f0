"""Visits: when each customer comes back, and what they do on each visit.

A customer's plan (their visits' times, the visit where they sign up, the newsletters they open) is
drawn from its own seeded RNG, and each visit's clicks from another one, so every visit is a pure
function of (seed, customer, visit number): the stream can be produced in any order, lazily.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tactful.demo.messages import SHOP_TITLE, Campaign, Message, Page, Writer, full_traits
from tactful.demo.people import Customer
from tactful.demo.shop import SEARCH_TERMS, Product

SIGN_IN_METHODS = ("email", "email", "google", "apple")
COUPONS = ("WELCOME10", "AUTUMN15")
_ADS = (
    Campaign("autumn-sale", "google", "cpc", term="gift ideas"),
    Campaign("autumn-sale", "instagram", "social", content="carousel"),
    Campaign("back-in-stock", "facebook", "social"),
    Campaign("brand", "bing", "cpc", term="tactful shop"),
)
_REFERRERS = ("", "", "https://www.google.com/", "https://duckduckgo.com/", "https://www.bing.com/")


@dataclass(frozen=True, slots=True)
class Visit:
    at: datetime
    customer: int
    number: int
    kind: str  # "web" or "email"
    signs_up: bool = False
    signed_up: bool = False  # the customer has an account by the start of this visit
    campaign_id: str | None = None  # the newsletter behind an e-mail or an e-mail-driven visit


def newsletter_id(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"nl-{year}-w{week:02d}"


def plan_visits(seed: int, customer: Customer, *, start: datetime, end: datetime) -> list[Visit]:
    """Every visit of `customer` within [start, end], in time order."""
    rng = random.Random(f"tactful-demo:{seed}:plan:{customer.index}")
    days = (end - start).total_seconds() / 86400
    count = max(1, round(rng.expovariate(1 / (customer.engagement * days / 21))))
    span = (end - start - timedelta(minutes=30)).total_seconds()
    times = sorted(start + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
    signup = -1
    if customer.user_id is not None and not customer.account_before_window:
        signup = min(rng.choice((0, 0, 1, 1, 2)), count - 1)
    visits = [
        Visit(
            at=t,
            customer=customer.index,
            number=n,
            kind="web",
            signs_up=n == signup,
            signed_up=customer.account_before_window or (signup >= 0 and n > signup),
        )
        for n, t in enumerate(times)
    ]
    if customer.newsletter_opt_in:
        joined = customer.created_at or times[max(signup, 0)]
        # Newsletters leave on Tuesdays at 08:00 UTC.
        send = start.replace(hour=8, minute=0, second=0, microsecond=0)
        send += timedelta(days=(1 - send.weekday()) % 7)
        if send < start:  # this week's newsletter left before the window opened
            send += timedelta(days=7)
        number = count
        while send < end:
            if send > joined and rng.random() < 0.45:
                opened = send + timedelta(minutes=rng.uniform(3, 48 * 60))
                campaign = newsletter_id(send)
                visits.append(
                    Visit(opened, customer.index, number, "email", signed_up=True, campaign_id=campaign)
                )
                number += 1
            send += timedelta(days=7)
    return sorted(visits, key=lambda v: v.at)


@dataclass(slots=True)
class _Cart:
    cart_id: str
    lines: dict[str, tuple[Product, int]]

    def items(self, currency: str) -> list[dict[str, Any]]:
        return [
            {
                "product_id": p.product_id,
                "sku": p.sku,
                "category": p.category,
                "price": p.price_in(currency),
                "quantity": q,
            }
            for p, q in self.lines.values()
        ]

    def subtotal(self, currency: str) -> float:
        return round(sum(p.price_in(currency) * q for p, q in self.lines.values()), 2)


class VisitWalker:
    """Turns one planned visit into the messages its clicks produce."""

    def __init__(self, seed: int, products: dict[str, tuple[Product, ...]], end: datetime) -> None:
        self.seed = seed
        self.products = products
        self.end = end

    def messages(self, customer: Customer, visit: Visit) -> list[Message]:
        rng = random.Random(f"tactful-demo:{self.seed}:visit:{customer.index}:{visit.number}")
        writer = Writer(customer=customer, rng=rng, clock=visit.at, until=self.end)
        if visit.kind == "email":
            self._email(writer, visit)
        else:
            self._web(writer, visit)
        return writer.out

    # -- e-mail ----------------------------------------------------------------------------

    def _email(self, w: Writer, visit: Visit) -> None:
        assert visit.campaign_id is not None
        w.track("Email Opened", {"campaign_id": visit.campaign_id}, browser=False)
        if w.rng.random() >= 0.35:
            return
        w.tick(5, 120)
        category = w.rng.choice(w.customer.favourite_categories)
        campaign = Campaign(visit.campaign_id, "newsletter", "email")
        url = f"https://shop.example.com/c/{category}{campaign.query()}"
        w.track("Email Link Clicked", {"campaign_id": visit.campaign_id, "url": url}, browser=False)
        w.tick(1, 4)
        w.campaign = campaign
        w.logged_in = w.rng.random() < 0.8
        w.page_view(_category_page(category, search=campaign.query()))
        self._browse(w)

    # -- web ---------------------------------------------------------------------------------

    def _web(self, w: Writer, visit: Visit) -> None:
        rng, customer = w.rng, w.customer
        w.logged_in = visit.signed_up and rng.random() < 0.75
        roll = rng.random()
        if roll < 0.2:
            w.campaign = rng.choice(_ADS)
            w.referrer = "https://www.google.com/" if w.campaign.source == "google" else ""
        else:
            w.referrer = rng.choice(_REFERRERS)
        search = w.campaign.query() if w.campaign else ""
        if rng.random() < 0.5:
            w.page_view(Page("/", SHOP_TITLE, "Home", search=search))
        else:
            w.page_view(_category_page(rng.choice(customer.favourite_categories), search=search))
        if visit.signed_up and not w.logged_in and rng.random() < 0.6:
            self._sign_in(w)
        if visit.signs_up:
            w.tick()
            self._sign_up(w)
        self._browse(w)

    def _sign_in(self, w: Writer) -> None:
        customer = w.customer
        w.tick()
        w.page_view(Page("/account/login", f"Sign in | {SHOP_TITLE}", "Sign In"))
        w.tick(5, 40)
        w.logged_in = True
        w.track("Signed In", {"method": w.rng.choice(SIGN_IN_METHODS)})
        traits: dict[str, Any] = {"email": customer.email}
        if customer.loyalty_tier is not None:
            traits["loyalty_tier"] = customer.loyalty_tier
        if customer.created_at is not None and w.rng.random() < 0.5:
            traits = full_traits(customer, created_at=customer.created_at, rng=w.rng)
        w.identify(traits)

    def _sign_up(self, w: Writer) -> None:
        w.page_view(Page("/account/signup", f"Create an account | {SHOP_TITLE}", "Sign Up"))
        w.tick(20, 90)
        w.logged_in = True
        w.alias()
        w.identify(full_traits(w.customer, created_at=w.clock, rng=w.rng))
        w.track("Signed Up", {"method": w.rng.choice(SIGN_IN_METHODS)})

    def _browse(self, w: Writer) -> None:
        rng, customer = w.rng, w.customer
        cart = _Cart(cart_id=f"c-{rng.getrandbits(48):012x}", lines={})
        steps = 1 + min(12, int(rng.expovariate(1 / 3.5)))
        for _ in range(steps):
            w.tick()
            roll = rng.random()
            category = (
                rng.choice(customer.favourite_categories)
                if rng.random() < 0.7
                else rng.choice(tuple(self.products))
            )
            if roll < 0.2:
                w.page_view(_category_page(category))
            elif roll < 0.35:
                query = rng.choice(SEARCH_TERMS[category])
                w.page_view(
                    Page(
                        "/search", f"Search | {SHOP_TITLE}", "Search", search=f"?q={query.replace(' ', '+')}"
                    )
                )
                w.track("Products Searched", {"query": query})
            else:
                self._product(w, cart, rng.choice(self.products[category]))
            if cart.lines and rng.random() < 0.06:
                self._remove(w, cart)
        if cart.lines:
            self._checkout(w, cart)

    def _product(self, w: Writer, cart: _Cart, product: Product) -> None:
        rng, currency = w.rng, w.customer.currency
        w.page_view(
            Page(f"/p/{product.slug}", f"{product.name} | {SHOP_TITLE}", "Product", category=product.category)
        )
        properties: dict[str, Any] = {
            "product_id": product.product_id,
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "brand": product.brand,
            "price": product.price_in(currency),
            "currency": currency,
        }
        if rng.random() < 0.03:
            properties["color"] = rng.choice(("black", "sand", "olive", "red"))
        w.track("Product Viewed", properties)
        favourite = product.category in w.customer.favourite_categories
        if rng.random() < (0.3 if favourite else 0.12):
            w.tick(3, 40)
            quantity = 1 if rng.random() < 0.85 else 2
            previous = cart.lines.get(product.product_id, (product, 0))[1]
            cart.lines[product.product_id] = (product, previous + quantity)
            added: dict[str, Any] = {
                "product_id": product.product_id,
                "category": product.category,
                "price": product.price_in(currency),
                "quantity": quantity,
                "cart_id": cart.cart_id,
            }
            if product.category == "fashion" and rng.random() < 0.2:
                added["size"] = rng.choice(("S", "M", "L"))
            w.track("Product Added", added)

    def _remove(self, w: Writer, cart: _Cart) -> None:
        w.tick(3, 30)
        product, quantity = cart.lines.pop(w.rng.choice(sorted(cart.lines)))
        w.track(
            "Product Removed",
            {
                "product_id": product.product_id,
                "category": product.category,
                "price": product.price_in(w.customer.currency),
                "quantity": quantity,
                "cart_id": cart.cart_id,
            },
        )

    def _checkout(self, w: Writer, cart: _Cart) -> None:
        rng, currency = w.rng, w.customer.currency
        if rng.random() >= 0.7:
            return
        w.tick()
        w.page_view(Page("/cart", f"Your cart | {SHOP_TITLE}", "Cart"))
        w.track("Cart Viewed", {"cart_id": cart.cart_id, "products": cart.items(currency)})
        if rng.random() >= 0.55:
            return
        w.tick(10, 60)
        subtotal = cart.subtotal(currency)
        order_id = f"o-{rng.getrandbits(48):012x}"
        coupon = rng.choice(COUPONS) if rng.random() < 0.15 else None
        discount = round(subtotal * (0.10 if coupon == "WELCOME10" else 0.15), 2) if coupon else 0.0
        revenue = round(subtotal - discount, 2)
        w.page_view(Page("/checkout", f"Checkout | {SHOP_TITLE}", "Checkout"))
        w.track(
            "Checkout Started",
            {"order_id": order_id, "value": subtotal, "revenue": revenue, "currency": currency,
             "products": cart.items(currency)},
        )  # fmt: skip
        if rng.random() >= 0.75:
            return
        w.tick(30, 240)
        shipping = 0.0 if subtotal >= 50 else 4.95
        tax = round(revenue * 0.1, 2)
        completed: dict[str, Any] = {
            "order_id": order_id,
            "total": round(revenue + shipping + tax, 2),
            "revenue": revenue,
            "shipping": shipping,
            "tax": tax,
            "discount": discount,
            "currency": currency,
            "products": cart.items(currency),
        }
        if coupon:
            completed["coupon"] = coupon
        w.track("Order Completed", completed)


def _category_page(category: str, *, search: str = "") -> Page:
    return Page(
        f"/c/{category}", f"{category.title()} | {SHOP_TITLE}", "Category", category=category, search=search
    )
