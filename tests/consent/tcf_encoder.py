"""A TC string encoder for the tests, written from the IAB specification on its own, with the
builders and hypothesis strategies that feed it.

It shares nothing with the decoder: it builds bits as text, pads them to whole bytes and lets
`base64.urlsafe_b64encode` produce the characters (a decoder must ignore the zero bits that follow
the last field). Round-trips through it check the decoder against a second reading of the spec.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from tactful.consent.tcf import PublisherRestriction, PublisherTC, RestrictionType, SegmentType, TCString

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BitWriter:
    def __init__(self) -> None:
        self.bits: list[str] = []

    def uint(self, value: int, width: int) -> BitWriter:
        if not 0 <= value < 1 << width:
            raise ValueError(f"{value} does not fit in {width} bits")
        if width:
            self.bits.append(format(value, f"0{width}b"))
        return self

    def bit(self, value: bool) -> BitWriter:
        return self.uint(int(value), 1)

    def letters(self, code: str) -> BitWriter:
        for letter in code.lower():
            self.uint(ord(letter) - ord("a"), 6)
        return self

    def deciseconds(self, moment: datetime) -> BitWriter:
        return self.uint((moment - EPOCH) // timedelta(milliseconds=100), 36)

    def bitfield(self, ids: Iterable[int], width: int) -> BitWriter:
        field = ["0"] * width
        for identifier in ids:
            field[identifier - 1] = "1"
        self.bits.append("".join(field))
        return self

    def ranges(self, entries: Sequence[tuple[int, int]]) -> BitWriter:
        self.uint(len(entries), 12)
        for start, end in entries:
            self.bit(start != end).uint(start, 16)
            if start != end:
                self.uint(end, 16)
        return self

    def raw(self, bits: str) -> BitWriter:
        self.bits.append(bits)
        return self

    def text(self) -> str:
        return "".join(self.bits)

    def base64url(self) -> str:
        return to_base64url(self.text())


def to_base64url(bits: str) -> str:
    padded = bits + "0" * (-len(bits) % 8)
    data = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def runs(ids: Iterable[int]) -> list[tuple[int, int]]:
    """Consecutive ids as inclusive (start, end) pairs."""
    result: list[tuple[int, int]] = []
    for identifier in sorted(set(ids)):
        if result and identifier == result[-1][1] + 1:
            result[-1] = (result[-1][0], identifier)
        else:
            result.append((identifier, identifier))
    return result


def write_vendor_section(
    w: BitWriter, ids: Iterable[int], *, range_encoding: bool, max_id: int | None = None
) -> BitWriter:
    vendors = set(ids)
    top = max(vendors, default=0) if max_id is None else max_id
    w.uint(top, 16).bit(range_encoding)
    return w.ranges(runs(vendors)) if range_encoding else w.bitfield(vendors, top)


def write_core_fields(w: BitWriter, tc: TCString) -> BitWriter:
    """Every core field from Version to PublisherCC, in the order of the spec's table."""
    w.uint(tc.version, 6).deciseconds(tc.created).deciseconds(tc.last_updated)
    w.uint(tc.cmp_id, 12).uint(tc.cmp_version, 12).uint(tc.consent_screen, 6).letters(tc.consent_language)
    w.uint(tc.vendor_list_version, 12).uint(tc.tcf_policy_version, 6)
    w.bit(tc.is_service_specific).bit(tc.use_non_standard_texts)
    w.bitfield(tc.special_feature_optins, 12).bitfield(tc.purposes_consent, 24)
    w.bitfield(tc.purposes_li_transparency, 24).bit(tc.purpose_one_treatment).letters(tc.publisher_cc)
    return w


def write_restrictions(w: BitWriter, restrictions: Sequence[PublisherRestriction]) -> BitWriter:
    w.uint(len(restrictions), 12)
    for restriction in restrictions:
        w.uint(restriction.purpose_id, 6).uint(int(restriction.restriction_type), 2)
        w.ranges(restriction.vendor_ranges)
    return w


def core_segment(tc: TCString, *, consents_as_ranges: bool = False, interests_as_ranges: bool = False) -> str:
    w = write_core_fields(BitWriter(), tc)
    write_vendor_section(w, tc.vendor_consents, range_encoding=consents_as_ranges)
    write_vendor_section(w, tc.vendor_legitimate_interests, range_encoding=interests_as_ranges)
    return write_restrictions(w, tc.publisher_restrictions).base64url()


def vendors_segment(kind: SegmentType, ids: Iterable[int], *, range_encoding: bool) -> str:
    w = BitWriter().uint(int(kind), 3)
    return write_vendor_section(w, ids, range_encoding=range_encoding).base64url()


def publisher_segment(publisher: PublisherTC) -> str:
    w = BitWriter().uint(int(SegmentType.PUBLISHER_TC), 3)
    w.bitfield(publisher.pub_purposes_consent, 24).bitfield(publisher.pub_purposes_li_transparency, 24)
    w.uint(publisher.num_custom_purposes, 6)
    w.bitfield(publisher.custom_purposes_consent, publisher.num_custom_purposes)
    w.bitfield(publisher.custom_purposes_li_transparency, publisher.num_custom_purposes)
    return w.base64url()


def encode_tc_string(
    tc: TCString,
    *,
    range_encoding: Sequence[bool] = (False, False, False, False),
    order: Sequence[SegmentType] = (
        SegmentType.DISCLOSED_VENDORS,
        SegmentType.ALLOWED_VENDORS,
        SegmentType.PUBLISHER_TC,
    ),
) -> str:
    """The TC string for `tc`. `range_encoding` picks the encoding of the vendor consent, vendor
    legitimate interest, disclosed and allowed sections; `order` the order of optional segments."""
    consents, interests, disclosed, allowed = range_encoding
    segments = [core_segment(tc, consents_as_ranges=consents, interests_as_ranges=interests)]
    for kind in order:
        if kind is SegmentType.DISCLOSED_VENDORS and tc.disclosed_vendors is not None:
            segments.append(vendors_segment(kind, tc.disclosed_vendors, range_encoding=disclosed))
        elif kind is SegmentType.ALLOWED_VENDORS and tc.allowed_vendors is not None:
            segments.append(vendors_segment(kind, tc.allowed_vendors, range_encoding=allowed))
        elif kind is SegmentType.PUBLISHER_TC and tc.publisher_tc is not None:
            segments.append(publisher_segment(tc.publisher_tc))
    return ".".join(segments)


# ---- builders ------------------------------------------------------------------------------------

DAY = datetime(2024, 3, 18, tzinfo=UTC)


def tc_string(**changes: object) -> TCString:
    """A plausible v2.2 string: day-precise timestamps, a CMP, consent to nothing."""
    base = TCString(
        version=2,
        created=DAY,
        last_updated=DAY,
        cmp_id=300,
        cmp_version=4,
        consent_screen=1,
        consent_language="EN",
        vendor_list_version=61,
        tcf_policy_version=4,
        is_service_specific=True,
        use_non_standard_texts=False,
        special_feature_optins=frozenset(),
        purposes_consent=frozenset(),
        purposes_li_transparency=frozenset(),
        purpose_one_treatment=False,
        publisher_cc="DE",
        vendor_consents=frozenset(),
        vendor_legitimate_interests=frozenset(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def publisher(consent: set[int], interests: set[int] | None = None) -> PublisherTC:
    return PublisherTC(
        pub_purposes_consent=frozenset(consent),
        pub_purposes_li_transparency=frozenset(interests or ()),
        num_custom_purposes=0,
        custom_purposes_consent=frozenset(),
        custom_purposes_li_transparency=frozenset(),
    )


# ---- strategies ----------------------------------------------------------------------------------

letters = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)
moments = st.integers(0, (1 << 36) - 1).map(lambda ds: EPOCH + timedelta(milliseconds=100 * ds))


def ids(top: int, max_size: int = 12) -> st.SearchStrategy[frozenset[int]]:
    return st.frozensets(st.integers(1, top), max_size=max_size)


# Vendor sets mix scattered ids with contiguous blocks so that range entries of both kinds occur.
blocks = st.tuples(st.integers(1, 3000), st.integers(0, 300)).map(lambda b: set(range(b[0], b[0] + b[1] + 1)))
vendor_sets = st.tuples(ids(5000, 20), st.lists(blocks, max_size=3)).map(
    lambda parts: frozenset(parts[0].union(*parts[1])) if parts[1] else parts[0]
)
restrictions = st.builds(
    PublisherRestriction,
    purpose_id=st.integers(1, 24),
    restriction_type=st.sampled_from(RestrictionType),
    vendor_ranges=vendor_sets.map(lambda vendors: tuple(runs(vendors))),
)


@st.composite
def publisher_segments(draw: st.DrawFn) -> PublisherTC:
    custom = draw(st.integers(0, 63))
    return PublisherTC(
        pub_purposes_consent=draw(ids(24)),
        pub_purposes_li_transparency=draw(ids(24)),
        num_custom_purposes=custom,
        custom_purposes_consent=draw(ids(custom)) if custom else frozenset(),
        custom_purposes_li_transparency=draw(ids(custom)) if custom else frozenset(),
    )


tc_strings = st.builds(
    TCString,
    version=st.just(2),
    created=moments,
    last_updated=moments,
    cmp_id=st.integers(0, 4095),
    cmp_version=st.integers(0, 4095),
    consent_screen=st.integers(0, 63),
    consent_language=letters,
    vendor_list_version=st.integers(0, 4095),
    tcf_policy_version=st.integers(0, 63),
    is_service_specific=st.booleans(),
    use_non_standard_texts=st.booleans(),
    special_feature_optins=ids(12),
    purposes_consent=ids(24),
    purposes_li_transparency=ids(24),
    purpose_one_treatment=st.booleans(),
    publisher_cc=letters,
    vendor_consents=vendor_sets,
    vendor_legitimate_interests=vendor_sets,
    publisher_restrictions=st.lists(restrictions, max_size=4).map(tuple),
    disclosed_vendors=st.none() | vendor_sets,
    allowed_vendors=st.none() | vendor_sets,
    publisher_tc=st.none() | publisher_segments(),
)
optional_orders = st.permutations(
    [SegmentType.DISCLOSED_VENDORS, SegmentType.ALLOWED_VENDORS, SegmentType.PUBLISHER_TC]
)
