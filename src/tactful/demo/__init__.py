"""The demo shop: synthetic products, customers and traffic, and seeding a fresh database with them.

    DemoConfig(seed, customers, days) + now
        │
        ├── shop.make_products      ~120 products in 7 categories (invented brands)
        ├── people.make_customer    one invented person per index: market, regime, age, consent, GPC
        ├── traffic.plan_visits     when each customer comes back (sign-up visit, newsletters)
        └── traffic.VisitWalker     what they do there ──▶ messages.Writer ──▶ Segment-spec messages
                                                                                │
    generate.DemoShop.batches(500) ◀────────── lazily, visit by visit, in time order
        │
        ▼
    seed.seed(context, now=...)     keys of each scope, then collect.service.ingest per batch, once

    simulate.simulate(transport, keys, ...)          `tactful simulate`: traffic through the HTTP API
        visitors.make_visitors                      new visitors: market, device, favourite, banner answer
        journeys.Visit, one per visit in time order
            page (write key) ──▶ consent, collection, "why am I seeing this?"
            backend (server key) ──▶ decide; behaviour: a click or an order, by who they are and
                                     what they were shown (outcomes carry properties.decision_id)
        tally.Summary                               from the engine's answers and its counters

Everything is deterministic from the seed and `now` (a simulation's visitors: and its run number);
nothing describes a real person (`example.com` addresses, documentation IP ranges, the fictional
555-01xx phone block).
"""
