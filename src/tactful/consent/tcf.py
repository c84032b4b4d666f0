"""IAB TCF v2.2 consent strings: decode them, then read what they grant to Tactful's own purposes.

    "CQ…A.IF…A.YAAA…"              base64url segments joined by '.', the core segment first
        │ decode_tc_string()        pure and bounded; anything malformed raises TCFError (422)
        ▼
    TCString                        core fields, vendor sets, publisher restrictions, and the
        │                           optional disclosed-vendors, allowed-vendors and Publisher TC segments
        │ tcf_purposes(vendor_id=…, allow_legitimate_interest=…)
        ▼
    TCFConsent                      per Tactful purpose: True / False, or None where TCF says nothing;
                                    precise_location; which segment answered

Tactful is the publisher's own system, not an ad vendor, so the Publisher TC segment answers when
the string has one; otherwise the core purpose signals do, with a configured vendor id's own
consent and the publisher's restrictions on it. Time stamps in a TC string are day-precise under
v2.2, so the consent ledger records the server's receipt time, not these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum, StrEnum

from tactful.consent.tcf_bits import (
    MAX_TC_STRING_CHARS,
    BitReader,
    TCFError,
    TCFReason,
    segment_bits,
)
from tactful.types import Purpose

__all__ = [
    "MAX_TC_STRING_CHARS",
    "PublisherRestriction",
    "PublisherTC",
    "RestrictionType",
    "SegmentType",
    "TCFConsent",
    "TCFError",
    "TCFReason",
    "TCFSource",
    "TCString",
    "decode_tc_string",
    "tcf_purposes",
]

TCF_VERSION = 2


class SegmentType(IntEnum):
    """The 3-bit type that opens every segment after the core one."""

    CORE = 0
    DISCLOSED_VENDORS = 1
    ALLOWED_VENDORS = 2
    PUBLISHER_TC = 3

    @property
    def label(self) -> str:
        return "publisher TC" if self is SegmentType.PUBLISHER_TC else self.name.lower().replace("_", " ")


class RestrictionType(IntEnum):
    NOT_ALLOWED = 0
    REQUIRE_CONSENT = 1
    REQUIRE_LEGITIMATE_INTEREST = 2


@dataclass(frozen=True)
class PublisherRestriction:
    """A publisher's override of one purpose for some vendors, kept as merged inclusive id ranges
    (expanding them could cost millions of ids for a few hundred bytes of input)."""

    purpose_id: int
    restriction_type: RestrictionType
    vendor_ranges: tuple[tuple[int, int], ...]

    def covers(self, vendor_id: int) -> bool:
        return any(start <= vendor_id <= end for start, end in self.vendor_ranges)


@dataclass(frozen=True)
class PublisherTC:
    """The Publisher TC segment: the publisher's own purposes, standard (1–24) and custom."""

    pub_purposes_consent: frozenset[int]
    pub_purposes_li_transparency: frozenset[int]
    num_custom_purposes: int
    custom_purposes_consent: frozenset[int]
    custom_purposes_li_transparency: frozenset[int]


@dataclass(frozen=True)
class TCString:
    """A decoded TC string, field for field as encoded (ids are 1-based, as in the spec)."""

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    tcf_policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_optins: frozenset[int]
    purposes_consent: frozenset[int]
    purposes_li_transparency: frozenset[int]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: frozenset[int]
    vendor_legitimate_interests: frozenset[int]
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    disclosed_vendors: frozenset[int] | None = None
    allowed_vendors: frozenset[int] | None = None
    """Deprecated by v2.2 but still found in older strings; kept, never used for decisions."""
    publisher_tc: PublisherTC | None = None


def decode_tc_string(value: str) -> TCString:
    """Decode a TC string, or raise `TCFError` with a reason.

    Time and memory are linear in the input, which is capped at 64 KiB; no field, however large
    its claimed size, makes the decoder do more than the bits it was given allow.
    """
    if len(value) > MAX_TC_STRING_CHARS:
        raise TCFError(TCFReason.TOO_LONG, f"longer than {MAX_TC_STRING_CHARS} characters")
    text = value.strip()
    if not text:
        raise TCFError(TCFReason.EMPTY, "no TC string given")
    core_text, *optional_texts = text.split(".")
    core = _core(BitReader(segment_bits(core_text, name="core"), segment="core"))
    found: dict[SegmentType, frozenset[int] | PublisherTC] = {}
    for segment_text in optional_texts:
        reader = BitReader(segment_bits(segment_text, name="optional"), segment="optional")
        kind = reader.number(3, "the segment type")
        if kind not in (SegmentType.DISCLOSED_VENDORS, SegmentType.ALLOWED_VENDORS, SegmentType.PUBLISHER_TC):
            raise TCFError(TCFReason.UNKNOWN_SEGMENT, f"segment type {kind} cannot follow the core segment")
        segment_type = SegmentType(kind)
        if segment_type in found:
            raise TCFError(TCFReason.DUPLICATE_SEGMENT, f"more than one {segment_type.label} segment")
        reader.segment = segment_type.label
        if segment_type is SegmentType.PUBLISHER_TC:
            found[segment_type] = _publisher_tc(reader)
        else:
            found[segment_type] = reader.vendor_section("the vendor ids")
    return _with_optional(core, found)


def _core(reader: BitReader) -> TCString:
    version = reader.number(6, "Version")
    if version != TCF_VERSION:
        raise TCFError(TCFReason.UNSUPPORTED_VERSION, f"version {version}; only version 2 is supported")
    return TCString(
        version=version,
        created=reader.deciseconds("Created"),
        last_updated=reader.deciseconds("LastUpdated"),
        cmp_id=reader.number(12, "CmpId"),
        cmp_version=reader.number(12, "CmpVersion"),
        consent_screen=reader.number(6, "ConsentScreen"),
        consent_language=reader.letters("ConsentLanguage"),
        vendor_list_version=reader.number(12, "VendorListVersion"),
        tcf_policy_version=reader.number(6, "TcfPolicyVersion"),
        is_service_specific=reader.flag("IsServiceSpecific"),
        use_non_standard_texts=reader.flag("UseNonStandardTexts"),
        special_feature_optins=reader.flags(12, "SpecialFeatureOptIns"),
        purposes_consent=reader.flags(24, "PurposesConsent"),
        purposes_li_transparency=reader.flags(24, "PurposesLITransparency"),
        purpose_one_treatment=reader.flag("PurposeOneTreatment"),
        publisher_cc=reader.letters("PublisherCC"),
        vendor_consents=reader.vendor_section("the vendor consent section"),
        vendor_legitimate_interests=reader.vendor_section("the vendor legitimate interest section"),
        publisher_restrictions=_restrictions(reader),
    )


def _restrictions(reader: BitReader) -> tuple[PublisherRestriction, ...]:
    field = "the publisher restrictions section"
    restrictions: list[PublisherRestriction] = []
    for _ in range(reader.number(12, field)):
        purpose_id = reader.number(6, field)
        kind = reader.number(2, field)
        if not 1 <= purpose_id <= 24:
            raise TCFError(TCFReason.BAD_RESTRICTION, f"a restriction names purpose {purpose_id}")
        if kind not in tuple(RestrictionType):
            raise TCFError(TCFReason.BAD_RESTRICTION, f"restriction type {kind} is undefined")
        # Restriction ranges have no MaxVendorId of their own; the 16-bit ids bound them.
        ranges = reader.ranges(field, max_id=None)
        restrictions.append(PublisherRestriction(purpose_id, RestrictionType(kind), ranges))
    return tuple(restrictions)


def _publisher_tc(reader: BitReader) -> PublisherTC:
    consent = reader.flags(24, "PubPurposesConsent")
    li_transparency = reader.flags(24, "PubPurposesLITransparency")
    custom = reader.number(6, "NumCustomPurposes")
    return PublisherTC(
        pub_purposes_consent=consent,
        pub_purposes_li_transparency=li_transparency,
        num_custom_purposes=custom,
        custom_purposes_consent=reader.flags(custom, "CustomPurposesConsent"),
        custom_purposes_li_transparency=reader.flags(custom, "CustomPurposesLITransparency"),
    )


def _with_optional(core: TCString, found: Mapping[SegmentType, frozenset[int] | PublisherTC]) -> TCString:
    disclosed = found.get(SegmentType.DISCLOSED_VENDORS)
    allowed = found.get(SegmentType.ALLOWED_VENDORS)
    publisher = found.get(SegmentType.PUBLISHER_TC)
    return replace(
        core,
        disclosed_vendors=disclosed if isinstance(disclosed, frozenset) else None,
        allowed_vendors=allowed if isinstance(allowed, frozenset) else None,
        publisher_tc=publisher if isinstance(publisher, PublisherTC) else None,
    )


# ---- From TCF purposes to Tactful purposes (DESIGN §1) -------------------------------------------


class TCFSource(StrEnum):
    PUBLISHER = "publisher"
    CORE = "core"


TCF_PURPOSES: Mapping[Purpose, frozenset[int]] = {
    Purpose.ANALYTICS: frozenset({1, 8, 9}),
    Purpose.SEGMENTS: frozenset({11}),
    Purpose.BEHAVIORAL: frozenset({1, 11}),
    Purpose.PREDICTIVE: frozenset({1, 5, 6}),
    Purpose.INDIVIDUAL: frozenset({1, 5, 6}),
}
"""The TCF purposes that must ALL be established for each Tactful purpose that TCF can grant."""

SEGMENTS_WITH_STORAGE: frozenset[int] = frozenset({1, 11})
"""`personalization.segments` when the decision reads a stored identifier (ePrivacy Art. 5(3))."""

NO_LEGITIMATE_INTEREST: frozenset[int] = frozenset({1, 3, 4, 5, 6})
"""TCF v2.2 purposes for which legitimate interest is never a legal basis."""

PRECISE_LOCATION_FEATURE = 1


@dataclass(frozen=True)
class TCFConsent:
    """What a TC string says about Tactful's purposes.

    `granted[p]` is True or False for every purpose TCF can speak to; `essential` is always True
    (it rests on TCF's special purposes, which need no consent); `marketing.email` and
    `sale_or_share` are None because TCF does not encode them. `missing[p]` lists, for each
    refused purpose, the TCF purposes that were not established.

    `granted[personalization.segments]` is the request-context reading (purpose 11 alone);
    `segments_with_storage` is the reading for decisions that read a stored identifier (1 and 11).
    `precise_location` is special feature 1 (and, on the vendor path, the vendor's consent).
    """

    granted: Mapping[Purpose, bool | None]
    segments_with_storage: bool
    precise_location: bool
    source_segment: TCFSource
    missing: Mapping[Purpose, frozenset[int]]

    def get(self, purpose: Purpose) -> bool | None:
        return self.granted.get(purpose)


def tcf_purposes(
    tc: TCString, *, vendor_id: int | None = None, allow_legitimate_interest: bool = False
) -> TCFConsent:
    """Read a decoded TC string as grants of Tactful purposes.

    `vendor_id`: set it when the deployment is registered as a TCF vendor; then, when the core
    segment answers, the vendor's own consent (or legitimate interest) must be signalled too and the
    publisher's restrictions on that vendor apply. The Publisher TC segment is the publisher's own
    signal and needs no vendor.

    `allow_legitimate_interest`: pass True only where the applicable regime lets a purpose rest on
    legitimate interest; then an established-LI bit counts like consent, except for purposes 1, 3,
    4, 5 and 6, where TCF v2.2 forbids it. By default only consent counts.

    A purpose 1 that was not disclosed at all (PurposeOneTreatment) counts as not consented.
    """
    if tc.publisher_tc is not None:
        source = TCFSource.PUBLISHER
        consents = tc.publisher_tc.pub_purposes_consent
        interests = tc.publisher_tc.pub_purposes_li_transparency
        vendor = None
    else:
        source = TCFSource.CORE
        consents = tc.purposes_consent
        interests = tc.purposes_li_transparency
        vendor = vendor_id

    def established(purpose_id: int) -> bool:
        by_consent = purpose_id in consents
        by_interest = (
            allow_legitimate_interest and purpose_id not in NO_LEGITIMATE_INTEREST and purpose_id in interests
        )
        if vendor is not None:
            by_consent = by_consent and vendor in tc.vendor_consents
            by_interest = by_interest and vendor in tc.vendor_legitimate_interests
            for restriction in tc.publisher_restrictions:
                if restriction.purpose_id != purpose_id or not restriction.covers(vendor):
                    continue
                # The vendor's declared flexibility is in the GVL, which we do not read: honour every
                # restriction as the stricter reading, which can only refuse more.
                kind = restriction.restriction_type
                if kind in (RestrictionType.NOT_ALLOWED, RestrictionType.REQUIRE_CONSENT):
                    by_interest = False
                if kind in (RestrictionType.NOT_ALLOWED, RestrictionType.REQUIRE_LEGITIMATE_INTEREST):
                    by_consent = False
        return by_consent or by_interest

    granted: dict[Purpose, bool | None] = dict.fromkeys(Purpose)
    granted[Purpose.ESSENTIAL] = True
    missing: dict[Purpose, frozenset[int]] = {}
    for purpose, needed in TCF_PURPOSES.items():
        absent = frozenset(purpose_id for purpose_id in needed if not established(purpose_id))
        granted[purpose] = not absent
        if absent:
            missing[purpose] = absent
    vendor_ok = vendor is None or vendor in tc.vendor_consents
    return TCFConsent(
        granted=granted,
        segments_with_storage=all(established(purpose_id) for purpose_id in SEGMENTS_WITH_STORAGE),
        precise_location=PRECISE_LOCATION_FEATURE in tc.special_feature_optins and vendor_ok,
        source_segment=source,
        missing=missing,
    )
