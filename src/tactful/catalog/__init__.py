"""The data catalog: which data points (atoms) Tactful may hold about a person, why, for how long,
and at which level of the personalization pyramid (DESIGN §1, §2).

    catalog.yaml ──loader.load_catalog──► schemas (shapes) ──assemble + inherit (rules)──► Catalog
                  └─check_catalog_file──► [CatalogProblem, ...]   (file, line, atom, what, fix)

    Catalog ──filter_message(segment message)──► FilterResult(kept, dropped, transient, atom)
            ──records_of_processing / render_records_markdown──► GDPR Art. 30 records

Everything here is pure apart from reading the file: collection calls `filter_message` on the hot
path, and the policy gate, profiles and rendering read atoms.

The file format
---------------
    version: 1
    controller: {name, contact, establishment: "DE", dpo?, representative?}
    data_subjects: [{name, description?}, ...]
    recipients:                     # who receives data; outside the EEA a safeguard is required
      email_provider: {name, role: processor|controller|internal, country: "US", safeguard, description}
    categories:                     # optional additions below a built-in category (categories.py)
      user.behavior.wishlist: {parent: user.behavior, description}
    url_parameters: [utm_*]         # the query parameters `text: url` fields keep (`*`: any end)
    never_in_copy:                  # categories no template may put into copy; each entry covers
      - user.location.precise       # the categories below it. Left out: these two (the default);
      - user.sensitive              # `never_in_copy: []` lifts the rule (per-atom flags still hold)
    expiry:                         # what the retention sweep does to an expired event row, per
      user.behavior.browsing: anonymise   # category (covering those below it): `delete` (the
      user.behavior.search: delete  # default) or `anonymise`; special categories are always deleted
    atoms:
      traits.email:                 # the prefix is the source: context. traits. events. computed.
        category: user.contact.email
        purposes: [essential, marketing.email]
        retention: 3y               # 36h, 30d, 26w, 13mo, 2y, P30D, or `request` (context only)
        identifier: true            # a direct identifier: encrypted at rest
        copy_forbidden: true        # never rendered into copy (whatever its category)
        recipients: [email_provider]
        device_identifier: false    # true when collecting it reads a cookie or device id
        explicit_consent: false     # required for special categories used for targeting
        level: "1:1"                # optional override of the derived level; quote it
        description: ...
      context.page.url:
        text: url                   # context and trait atoms: `free` text or a `url` (redact.py)
      events.order_completed:       # track "Order Completed"; page → events.page_viewed,
        category: user.behavior.purchase   # screen → events.screen_viewed, group → events.group
        essential: true             # needed to deliver the service
        retention_anchor: latest    # count the period from the subject's latest such row (default:
                                    # `each`, from each row's own time)
        event: Order Completed      # optional: the Segment name, when not the title-cased key
        properties:                 # a list of names, or name → {category, description}
          order_id: {reference: true}   # leads back to the person elsewhere: dropped when anonymised
          note: {text: free}        # free text: e-mail, phone and card numbers redacted
          products[].category:      # `[]` marks an array of objects
          decision_id: {category: user.behavior.outcome}   # makes the event an outcome (below)
      computed.favorite_category:
        category: user.derived.inference   # optional: defaults to the strictest input's
        inputs: [events.product_viewed.category, events.order_completed.products[].category]
      session.product_views_by_category:   # this session's behaviour, counted as events arrive
        session: {event: events.product_viewed, measure: count, by: category}  # count|last|since

A context atom's value is read from the request; with `retention: request` it is used for that
request only and never stored, otherwise it is stored with the event it arrived on. An identify
message's `traits` are filtered by the `traits.*` atoms, a group call's `traits` by the properties of
`events.group`, and a page or screen call's top-level `name` and `category` by the page or screen
atom's properties. Fields not declared are dropped and named; system fields are always kept
(`filtering.SYSTEM_PATHS`). Fields marked `text: free` lose e-mail addresses, phone numbers and card
numbers that pass the Luhn check; `text: url` fields lose their fragment and the query parameters
`url_parameters` does not name (`redact.py`); the filter names each removal.

Outcomes
--------
A track event that carries `properties.decision_id` (the id `POST /v1/decide` answered with) says
which decision it followed. It is an outcome, linked to that decision by `tactful.measure`, when its
event atom declares `decision_id` among its properties and it is stored for `analytics` (measuring
content and outcomes); otherwise the id is left out of the stored event. Declare it with a category
that says what it is, a pseudonymous reference to a decision rather than an identifier of the
person: the demo catalog adds `user.behavior.outcome` below `user.behavior`. The event's numeric
`revenue`, `value` or `total` property, when declared, is the outcome's value.

Retention
---------
Every stored atom expires after its `retention` (`tactful.rights.retention` sweeps). A context field
is stored with the event it arrived on until the shorter of their periods ends. `minimisation.py`
holds the shipped defaults (precise location 24 hours, in-session behaviour 30 days, other events 13
months, purchases 24 months after the latest) and warns, without refusing, for an atom kept longer.
An expired event row is deleted, or anonymised where `expiry` says so: it then keeps what it counts
as (type, day, declared properties that are neither text nor `reference` nor at `1:1`, coarse
context) and loses every link to the person.

Copy rules
----------
Templates (`tactful.render`) are linted against the catalog when published: a template may not read
an atom marked `copy_forbidden`, nor one whose category (or, for an event atom, the category of the
property it reads) falls under an entry of `never_in_copy`. `Catalog.copy_forbidden` lists every
atom either rule keeps out of copy, and `Catalog.copy_rule` names the entry that covers a category.

Levels
------
An atom's level is derived from its source and category (`levels.py` holds the table): request
context such as coarse location, language or device type is `1:many`; a stored age range is
`1:many`; in-session behaviour (events, and the session atoms counted from them, `session.py`) is
`1:some`; computed, cross-session profile atoms are at
least `1:few`; identified traits (name, contact), purchase history and special categories are `1:1`.
A computed atom inherits at least the strictest category, level and retention of its inputs and may
declare a stricter category (`inherit.py`).
"""

from tactful.catalog.filtering import FilterResult
from tactful.catalog.model import Atom, AtomInput, Catalog, CatalogProblem, Property, Source

__all__ = ["Atom", "AtomInput", "Catalog", "CatalogProblem", "FilterResult", "Property", "Source"]
