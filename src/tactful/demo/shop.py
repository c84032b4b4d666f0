"""The demo shop's product list: invented brands and products, deterministic from a seed.

Prices are kept in euros; `price_in` converts them at fixed demo rates so that a customer in each
market sees one currency throughout, as a real shop's storefront would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CATEGORIES: tuple[str, ...] = ("outdoor", "books", "electronics", "home", "kitchen", "fashion", "wellness")

# Fixed demo rates (not market data): enough for prices to look plausible per market.
RATES: dict[str, Decimal] = {
    "EUR": Decimal("1"),
    "USD": Decimal("1.08"),
    "GBP": Decimal("0.86"),
    "CAD": Decimal("1.47"),
}

_BRANDS: dict[str, tuple[str, ...]] = {
    "outdoor": ("Trailmark", "Northpine", "Fjellgear"),
    "books": ("Larkspur Press", "Quillhouse", "Meridian Books"),
    "electronics": ("Voltaic", "Lumenix", "Kestrel Audio"),
    "home": ("Hearthly", "Casa Lumo", "Oakroom"),
    "kitchen": ("Copperleaf", "Saltbox", "Brisa Cucina"),
    "fashion": ("Maison Verre", "Tidewear", "Linnea"),
    "wellness": ("Calmora", "Vitalis Lab", "Soma Botanics"),
}
_NOUNS: dict[str, tuple[str, ...]] = {
    "outdoor": ("Tent", "Backpack", "Sleeping Bag", "Trekking Poles", "Headlamp", "Rain Jacket"),
    "books": ("Cookbook", "Novel", "Field Guide", "Travel Atlas", "Poetry Collection", "Biography"),
    "electronics": ("Headphones", "Smart Speaker", "E-Reader", "Power Bank", "Action Camera", "Smartwatch"),
    "home": ("Throw Blanket", "Table Lamp", "Linen Set", "Wall Clock", "Plant Pot", "Scented Candle"),
    "kitchen": ("Chef's Knife", "Dutch Oven", "Espresso Maker", "Cutting Board", "Spice Rack", "Kettle"),
    "fashion": ("Wool Scarf", "Denim Jacket", "Sneakers", "Leather Belt", "Sun Hat", "Knit Sweater"),
    "wellness": ("Yoga Mat", "Foam Roller", "Herbal Tea Set", "Massage Ball", "Bath Salts", "Sleep Mask"),
}
_ADJECTIVES: tuple[str, ...] = (
    "Classic", "Everyday", "Compact", "Alpine", "Studio", "Essential", "Heritage", "Nordic", "Coastal",
    "Urban",
)  # fmt: skip
_PRICE_RANGES: dict[str, tuple[int, int]] = {
    "outdoor": (15, 420),
    "books": (8, 45),
    "electronics": (20, 380),
    "home": (12, 160),
    "kitchen": (10, 240),
    "fashion": (18, 190),
    "wellness": (7, 80),
}
SEARCH_TERMS: dict[str, tuple[str, ...]] = {
    "outdoor": ("tent", "hiking backpack", "waterproof jacket", "camping"),
    "books": ("cookbook", "travel guide", "new novels", "biography"),
    "electronics": ("wireless headphones", "power bank", "smartwatch", "speaker"),
    "home": ("blanket", "lamp", "candle", "linen"),
    "kitchen": ("knife", "espresso", "dutch oven", "kettle"),
    "fashion": ("scarf", "sneakers", "denim", "sweater"),
    "wellness": ("yoga mat", "tea", "massage", "sleep"),
}


@dataclass(frozen=True, slots=True)
class Product:
    product_id: str
    sku: str
    name: str
    brand: str
    category: str
    price: Decimal
    currency: str = "EUR"

    def price_in(self, currency: str) -> float:
        """The price in `currency`, rounded to a cent, as the storefront shows it."""
        return to_money(self.price * RATES[currency])

    @property
    def slug(self) -> str:
        return self.name.lower().replace("'", "").replace(" ", "-")


def to_money(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def make_products(seed: int, count: int = 120) -> tuple[Product, ...]:
    """`count` products spread evenly over `CATEGORIES`, the same for the same seed."""
    rng = random.Random(f"tactful-demo:{seed}:products")
    products: list[Product] = []
    seen: set[str] = set()
    for index in range(count):
        category = CATEGORIES[index % len(CATEGORIES)]
        brand = rng.choice(_BRANDS[category])
        name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])}"
        while name in seen:
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS[category])} {rng.randint(2, 9)}"
        seen.add(name)
        low, high = _PRICE_RANGES[category]
        # Prices ending in .99 or .49, like a real price list.
        price = Decimal(rng.randint(low, high)) - Decimal(rng.choice(("0.01", "0.51")))
        products.append(
            Product(
                product_id=f"p-{index + 1:04d}",
                sku=f"{category[:3].upper()}-{rng.randint(10000, 99999)}-{index + 1:03d}",
                name=name,
                brand=brand,
                category=category,
                price=price,
            )
        )
    return tuple(products)


def by_category(products: tuple[Product, ...]) -> dict[str, tuple[Product, ...]]:
    return {c: tuple(p for p in products if p.category == c) for c in CATEGORIES}
