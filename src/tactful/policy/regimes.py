"""Regimes: which legal basis each purpose rests on, and the age and signal rules that go with it.

Several regimes can apply to one subject at once (GDPR for every subject of an EU/EEA-established
controller and for subjects in the EU/EEA, CCPA for California residents); the gate asks each of them
and the strictest answer wins. The two built-ins follow DESIGN §1; a deployment adds its own with
`regime_from_config`. This is engineering, not legal advice: every default here is configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from types import MappingProxyType

from tactful.catalog.model import EEA
from tactful.errors import ConfigurationError
from tactful.types import Purpose


class LegalBasis(StrEnum):
    """Why a purpose may be processed, ordered from strictest to laxest by `strictness`."""

    CONSENT = "consent"
    """Nothing without a recorded grant."""
    LEGITIMATE_INTEREST = "legitimate_interest"
    """Allowed until the subject objects or opts out."""
    CONTRACT = "contract"
    """Needed to perform a contract with the subject: no consent, and an objection does not stop it."""
    NOT_REQUIRED = "not_required"
    """No consent needed (delivering the service, security, fraud prevention)."""

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS: Mapping[LegalBasis, int] = MappingProxyType(
    {
        LegalBasis.CONSENT: 3,
        LegalBasis.LEGITIMATE_INTEREST: 2,
        LegalBasis.CONTRACT: 1,
        LegalBasis.NOT_REQUIRED: 0,
    }
)


def _bases(default: LegalBasis, **overrides: LegalBasis) -> Mapping[Purpose, LegalBasis]:
    chosen = dict.fromkeys(Purpose, default)
    chosen[Purpose.ESSENTIAL] = LegalBasis.NOT_REQUIRED
    for name, basis in overrides.items():
        chosen[Purpose(name)] = basis
    return MappingProxyType(chosen)


@dataclass(frozen=True)
class Regime:
    """One legal regime as the gate reads it.

    Age rules: below `consent_age` a subject's own consent does not count, and a purpose resting on
    consent also needs a parent's consent recorded with its verification method; with `coppa`, every
    purpose but `essential` needs it below that age, whatever its basis. Below `opt_in_age`, the
    purposes in `opt_in_purposes` rest on consent instead of their usual basis (CCPA: sale or sharing
    of a minor's data is opt-in under 16).
    """

    name: str
    legal_basis: Mapping[Purpose, LegalBasis]
    consent_age: int = 16
    coppa: bool = False
    opt_in_age: int | None = None
    opt_in_purposes: frozenset[Purpose] = frozenset()
    gpc_caps_personalization: bool = True
    """Tactful's own policy: a GPC signal also caps the subject at `1:many` (not the law's rule)."""
    li_segments_request_context_only: bool = False
    """Without a grant, `personalization.segments` may rest on legitimate interest, but only for
    request-context atoms read from the request and used for it."""
    device_identifier_needs_consent: bool = False
    """ePrivacy Art. 5(3): atoms that depend on a device identifier need a grant, never legitimate
    interest."""
    countries: frozenset[str] = frozenset()
    """Subjects located in these countries (ISO 3166-1 alpha-2) are covered."""
    regions: frozenset[str] = frozenset()
    """Subjects resident in these regions (ISO 3166-2, `US-CA`) are covered."""
    establishments: frozenset[str] = frozenset()
    """Every subject of a controller established in these countries is covered."""
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        missing = [p.value for p in Purpose if p not in self.legal_basis]
        if missing:
            raise ConfigurationError(f"regime {self.name!r} gives no legal basis for: {', '.join(missing)}")
        object.__setattr__(self, "legal_basis", MappingProxyType(dict(self.legal_basis)))
        # Regimes key the gate's memo on every call: hash once, not field by field each time.
        key = (self.name, tuple(sorted(self.legal_basis.items())), self.consent_age, self.coppa,
               self.opt_in_age, self.opt_in_purposes, self.gpc_caps_personalization,
               self.li_segments_request_context_only, self.device_identifier_needs_consent,
               self.countries, self.regions, self.establishments)  # fmt: skip
        object.__setattr__(self, "_hash", hash(key))

    def __hash__(self) -> int:
        return self._hash

    def basis(self, purpose: Purpose, *, age: int | None = None) -> LegalBasis:
        """The legal basis of `purpose` for a subject of `age` (None: unknown, counted as adult)."""
        if (
            age is not None
            and self.opt_in_age is not None
            and age < self.opt_in_age
            and purpose in self.opt_in_purposes
        ):
            return LegalBasis.CONSENT
        return self.legal_basis[purpose]

    def applies(self, *, establishment: str | None, country: str | None, region: str | None) -> bool:
        if establishment is not None and establishment.upper() in self.establishments:
            return True
        if country is not None and country.upper() in self.countries:
            return True
        return region is not None and _region_code(country, region) in self.regions


def _region_code(country: str | None, region: str) -> str:
    region = region.upper()
    if "-" in region or country is None:
        return region
    return f"{country.upper()}-{region}"


GDPR = Regime(
    name="gdpr",
    legal_basis=_bases(LegalBasis.CONSENT),
    consent_age=16,
    li_segments_request_context_only=True,
    device_identifier_needs_consent=True,
    countries=EEA,
    establishments=EEA,
)
"""Consent for every purpose but `essential`; segments may rest on legitimate interest for request
context only; parental consent under 16 (Art. 8; member states may lower it to 13)."""

CCPA = Regime(
    name="ccpa",
    legal_basis=_bases(LegalBasis.LEGITIMATE_INTEREST),
    consent_age=13,
    coppa=True,
    opt_in_age=16,
    opt_in_purposes=frozenset({Purpose.SALE_OR_SHARE}),
    regions=frozenset({"US-CA"}),
)
"""Allowed until the subject opts out; sale or sharing is opt-in under 16; under 13, verifiable
parental consent (COPPA) before anything but the service itself."""

BUILTIN_REGIMES: Mapping[str, Regime] = MappingProxyType({GDPR.name: GDPR, CCPA.name: CCPA})


def applicable_regimes(
    establishment_country: str | None,
    subject_country: str | None,
    subject_region: str | None,
    *,
    regimes: Iterable[Regime] = (GDPR, CCPA),
    default: Sequence[Regime] = (GDPR,),
) -> tuple[Regime, ...]:
    """The regimes that cover a subject, in the order given; `default` when none does.

    The default is GDPR, the strictest built-in: a subject whose location is unknown may well be in
    the EU, and a deployment that knows better configures its own default.
    """
    found = tuple(
        r
        for r in regimes
        if r.applies(establishment=establishment_country, country=subject_country, region=subject_region)
    )
    return found or tuple(default)


# -- custom regimes ----------------------------------------------------------------------------

_FLAGS = ("coppa", "gpc_caps_personalization", "li_segments_request_context_only",
          "device_identifier_needs_consent")  # fmt: skip
_SETS = ("countries", "regions", "establishments")
_KNOWN_KEYS = frozenset(
    {"name", "extends", "legal_basis", "default_basis", "consent_age", "opt_in_age", "opt_in_purposes",
     *_FLAGS, *_SETS}
)  # fmt: skip


def regime_from_config(mapping: Mapping[str, object]) -> Regime:
    """A regime from configuration, e.g.

        {"name": "lgpd", "extends": "gdpr", "consent_age": 18, "countries": ["BR"],
         "legal_basis": {"analytics": "legitimate_interest"}}

    `extends` starts from a built-in (its coverage is not inherited); otherwise every purpose but
    `essential` takes `default_basis` (consent). Raises `ConfigurationError` naming what is wrong.
    """
    unknown = sorted(set(mapping) - _KNOWN_KEYS)
    if unknown:
        raise ConfigurationError(f"regime: unknown keys {unknown}; known: {sorted(_KNOWN_KEYS)}")
    name = mapping.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigurationError("regime: 'name' must be a non-empty string")
    parent_name = mapping.get("extends")
    if parent_name is not None:
        parent = BUILTIN_REGIMES.get(str(parent_name))
        if parent is None:
            raise ConfigurationError(f"regime {name!r}: 'extends' must be one of {sorted(BUILTIN_REGIMES)}")
        base = replace(
            parent, name=name, countries=frozenset(), regions=frozenset(), establishments=frozenset()
        )
    else:
        default = _basis(name, "default_basis", mapping.get("default_basis", LegalBasis.CONSENT.value))
        base = Regime(name=name, legal_basis=_bases(default))
    bases = dict(base.legal_basis)
    raw_bases = mapping.get("legal_basis", {})
    if not isinstance(raw_bases, Mapping):
        raise ConfigurationError(f"regime {name!r}: 'legal_basis' must map purposes to bases")
    for purpose, basis in raw_bases.items():
        bases[_purpose(name, purpose)] = _basis(name, f"legal_basis.{purpose}", basis)
    changes: dict[str, object] = {"legal_basis": bases}
    for key in ("consent_age", "opt_in_age"):
        if key in mapping:
            changes[key] = _age(name, key, mapping[key], optional=key == "opt_in_age")
    for key in _FLAGS:
        if key in mapping:
            if not isinstance(mapping[key], bool):
                raise ConfigurationError(f"regime {name!r}: {key!r} must be true or false")
            changes[key] = mapping[key]
    for key in _SETS:
        if key in mapping:
            changes[key] = frozenset(s.upper() for s in _strings(name, key, mapping[key]))
    if "opt_in_purposes" in mapping:
        changes["opt_in_purposes"] = frozenset(
            _purpose(name, p) for p in _strings(name, "opt_in_purposes", mapping["opt_in_purposes"])
        )
    return replace(base, **changes)  # type: ignore[arg-type]


def _basis(regime: str, where: str, value: object) -> LegalBasis:
    try:
        return LegalBasis(str(value))
    except ValueError:
        allowed = ", ".join(b.value for b in LegalBasis)
        raise ConfigurationError(f"regime {regime!r}: {where} {value!r} is not one of {allowed}") from None


def _purpose(regime: str, value: object) -> Purpose:
    try:
        return Purpose(str(value))
    except ValueError:
        allowed = ", ".join(p.value for p in Purpose)
        raise ConfigurationError(f"regime {regime!r}: unknown purpose {value!r} (one of {allowed})") from None


def _age(regime: str, key: str, value: object, *, optional: bool) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 21:
        raise ConfigurationError(f"regime {regime!r}: {key!r} must be an age from 0 to 21")
    return value


def _strings(regime: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"regime {regime!r}: {key!r} must be a list of strings")
    return list(value)


__all__ = [
    "BUILTIN_REGIMES",
    "CCPA",
    "GDPR",
    "LegalBasis",
    "Regime",
    "applicable_regimes",
    "regime_from_config",
]
