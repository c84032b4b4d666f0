"""The TCF v2.2 decoder and its reading as Tactful purposes (DESIGN §1)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.consent.tcf import (
    MAX_TC_STRING_CHARS,
    TCF_PURPOSES,
    PublisherRestriction,
    RestrictionType,
    SegmentType,
    TCFError,
    TCFReason,
    TCFSource,
    TCString,
    decode_tc_string,
    tcf_purposes,
)
from tactful.errors import InvalidInput
from tactful.types import Purpose
from tests.consent.tcf_encoder import (
    DAY,
    BitWriter,
    encode_tc_string,
    ids,
    optional_orders,
    publisher,
    publisher_segment,
    tc_string,
    tc_strings,
    to_base64url,
    vendor_sets,
    write_core_fields,
    write_restrictions,
    write_vendor_section,
)

TYPICAL = (
    "CP7qygAP7qygAEsAEBENA9EoAP_gAEPgAAYgH0QAYAAgfQBeYBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIAAA"
    ".IH0QAYAAgfQA.cDQAAAAAAAA"
)


def reason_of(value: str) -> TCFReason:
    with pytest.raises(TCFError) as caught:
        decode_tc_string(value)
    return caught.value.reason


# ---- round trips ---------------------------------------------------------------------------------


@given(tc=tc_strings, encodings=st.lists(st.booleans(), min_size=4, max_size=4), order=optional_orders)
def test_decode_inverts_the_encoder(tc: TCString, encodings: list[bool], order: list[SegmentType]) -> None:
    assert decode_tc_string(encode_tc_string(tc, range_encoding=encodings, order=order)) == tc


@given(vendors=vendor_sets)
def test_bit_field_and_range_encodings_decode_to_the_same_vendors(vendors: frozenset[int]) -> None:
    tc = tc_string(vendor_consents=vendors, vendor_legitimate_interests=vendors, disclosed_vendors=vendors)
    as_bits = decode_tc_string(encode_tc_string(tc, range_encoding=(False,) * 4))
    as_ranges = decode_tc_string(encode_tc_string(tc, range_encoding=(True,) * 4))
    assert as_bits.vendor_consents == as_ranges.vendor_consents == vendors
    assert as_bits.disclosed_vendors == as_ranges.disclosed_vendors == vendors


def test_a_typical_v22_string_decodes_field_by_field() -> None:
    value = encode_tc_string(
        tc_string(
            special_feature_optins=frozenset({1}),
            purposes_consent=frozenset(range(1, 12)),
            purposes_li_transparency=frozenset({2, 7, 8, 9, 10, 11}),
            vendor_consents=frozenset(range(1, 1001)),
            vendor_legitimate_interests=frozenset({8, 755}),
            disclosed_vendors=frozenset(range(1, 1001)),
            publisher_tc=publisher({1, 8, 9, 11}),
        ),
        range_encoding=(True, False, True, False),
    )
    # Pinned: a change in the encoder that happens to be mirrored in the decoder still shows here.
    assert value == TYPICAL
    tc = decode_tc_string(value)
    assert (tc.version, tc.cmp_id, tc.cmp_version, tc.consent_screen) == (2, 300, 4, 1)
    assert (tc.consent_language, tc.publisher_cc, tc.vendor_list_version, tc.tcf_policy_version) == (
        "EN",
        "DE",
        61,
        4,
    )
    assert tc.created == tc.last_updated == DAY
    assert tc.purposes_consent == frozenset(range(1, 12))
    assert tc.purposes_li_transparency == {2, 7, 8, 9, 10, 11}
    assert tc.special_feature_optins == {1}
    assert tc.vendor_consents == frozenset(range(1, 1001))
    assert tc.vendor_legitimate_interests == {8, 755}
    assert tc.disclosed_vendors == frozenset(range(1, 1001))
    assert tc.allowed_vendors is None
    assert tc.publisher_tc == publisher({1, 8, 9, 11})


def test_the_service_specific_example_of_the_specification() -> None:
    # The "[Core String].[Publisher TC]" example printed in the IAB Tech Lab specification, whose
    # fields are also published by other decoders: a check that does not go through our encoder.
    tc = decode_tc_string(
        "CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA"
    )
    assert tc.created == datetime.fromtimestamp(1228644257.7, UTC)
    assert int(tc.last_updated.timestamp()) == 1326215413
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen, tc.consent_language) == (21, 7, 2, "EN")
    assert tc.vendor_list_version == 23
    assert tc.purposes_consent == {1, 3, 9, 10}
    assert tc.publisher_tc is not None
    assert tcf_purposes(tc).source_segment is TCFSource.PUBLISHER


def test_surrounding_whitespace_is_ignored() -> None:
    assert decode_tc_string(f"  {TYPICAL}\n") == decode_tc_string(TYPICAL)


# ---- malformed input -----------------------------------------------------------------------------


def core_writer(tc: TCString | None = None) -> BitWriter:
    return write_core_fields(BitWriter(), tc or tc_string())


def empty_vendor_sections(w: BitWriter) -> BitWriter:
    write_vendor_section(w, (), range_encoding=False)
    return write_vendor_section(w, (), range_encoding=False)


def test_an_error_is_invalid_input_with_the_tcf_code() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_tc_string("B")
    assert caught.value.code == "tcf_invalid"
    assert caught.value.field == "tcf_string"
    assert "version" in caught.value.message


@pytest.mark.parametrize("value", ["", "   ", f"{TYPICAL}.", f"{TYPICAL}..cDQAAAAAAAA", ".cDQAAAAAAAA"])
def test_empty_input_or_segments(value: str) -> None:
    assert reason_of(value) is TCFReason.EMPTY


def test_strings_over_64_kib_are_refused_before_decoding() -> None:
    assert reason_of("C" * (MAX_TC_STRING_CHARS + 1)) is TCFReason.TOO_LONG


@pytest.mark.parametrize(
    "value",
    [
        TYPICAL.replace("_", "/"),  # plain base64, not base64url
        TYPICAL.replace("-", "+") + "+",
        TYPICAL.split(".")[0] + "==",  # padding is not allowed
        "CPé7qygA",
        "CP7q ygA",
        "CP7qygA\x00",
    ],
)
def test_characters_outside_base64url(value: str) -> None:
    assert reason_of(value) is TCFReason.BAD_BASE64URL


@pytest.mark.parametrize("keep", [1, 5, 20, 40])
def test_truncated_core_segments(keep: int) -> None:
    assert reason_of(TYPICAL[:keep]) is TCFReason.TRUNCATED


def test_a_bit_field_longer_than_the_string() -> None:
    w = core_writer().uint(65535, 16).bit(False).raw("1" * 100)
    assert reason_of(w.base64url()) is TCFReason.TRUNCATED


def test_a_truncated_publisher_segment() -> None:
    w = BitWriter().uint(int(SegmentType.PUBLISHER_TC), 3).raw("1" * 48).uint(63, 6).raw("1" * 10)
    assert reason_of(f"{TYPICAL.split('.')[0]}.{w.base64url()}") is TCFReason.TRUNCATED


@pytest.mark.parametrize("version", [0, 1, 3, 63])
def test_versions_other_than_2(version: int) -> None:
    value = encode_tc_string(tc_string(version=version))
    assert reason_of(value) is TCFReason.UNSUPPORTED_VERSION


@pytest.mark.parametrize("kind", [0, 4, 5, 6, 7])
def test_unknown_segment_types(kind: int) -> None:
    segment = to_base64url(format(kind, "03b") + "0" * 45)
    assert reason_of(f"{TYPICAL.split('.')[0]}.{segment}") is TCFReason.UNKNOWN_SEGMENT


def test_a_repeated_segment() -> None:
    segment = publisher_segment(publisher({1}))
    assert reason_of(f"{encode_tc_string(tc_string())}.{segment}.{segment}") is TCFReason.DUPLICATE_SEGMENT


@pytest.mark.parametrize("position", ["language", "country"])
def test_letters_beyond_z(position: str) -> None:
    w = core_writer()
    bits = w.text()
    # ConsentLanguage starts at bit 108 and PublisherCC at bit 201 (sums of the spec's field widths).
    start = 108 if position == "language" else 201
    value = bits[:start] + format(26, "06b") + bits[start + 6 :]
    w = empty_vendor_sections(BitWriter().raw(value)).uint(0, 12)
    assert reason_of(w.base64url()) is TCFReason.BAD_LETTER


@pytest.mark.parametrize(
    "entry",
    [
        "0" + format(0, "016b"),  # vendor 0 does not exist
        "1" + format(9, "016b") + format(3, "016b"),  # ends before it starts
        "0" + format(11, "016b"),  # above MaxVendorId
        "1" + format(5, "016b") + format(11, "016b"),
    ],
)
def test_impossible_vendor_ranges(entry: str) -> None:
    w = core_writer().uint(10, 16).bit(True).uint(1, 12).raw(entry)
    w = write_vendor_section(w, (), range_encoding=False).uint(0, 12)
    assert reason_of(w.base64url()) is TCFReason.BAD_RANGE


@pytest.mark.parametrize(("purpose_id", "kind"), [(0, 0), (25, 1), (63, 0), (2, 3)])
def test_impossible_publisher_restrictions(purpose_id: int, kind: int) -> None:
    w = empty_vendor_sections(core_writer()).uint(1, 12).uint(purpose_id, 6).uint(kind, 2).ranges([(1, 5)])
    assert reason_of(w.base64url()) is TCFReason.BAD_RESTRICTION


def test_overlapping_ranges_cost_no_more_than_the_vendor_id_space() -> None:
    # 4,095 entries each naming every vendor: naive expansion would build 268 million ids.
    w = core_writer().uint(65535, 16).bit(True).ranges([(1, 65535)] * 4095)
    w = write_vendor_section(w, (), range_encoding=False)
    restriction = PublisherRestriction(1, RestrictionType.NOT_ALLOWED, ((1, 65535),) * 60)
    w = write_restrictions(w, [restriction] * 60)
    value = w.base64url()
    assert len(value) < MAX_TC_STRING_CHARS
    started = time.perf_counter()
    tc = decode_tc_string(value)
    assert time.perf_counter() - started < 5
    assert len(tc.vendor_consents) == 65535
    assert {r.vendor_ranges for r in tc.publisher_restrictions} == {((1, 65535),)}


def test_a_maximal_bit_field_decodes() -> None:
    everyone = frozenset(range(1, 65536))
    tc = decode_tc_string(encode_tc_string(tc_string(vendor_consents=everyone)))
    assert tc.vendor_consents == everyone


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def decode_or_refuse(value: str) -> None:
    """Decoding may refuse, but only with TCFError: any other exception fails the test."""
    with contextlib.suppress(TCFError):
        decode_tc_string(value)


@given(value=st.text(max_size=300))
def test_any_text_decodes_or_raises_tcf_error(value: str) -> None:
    decode_or_refuse(value)


@given(value=st.text(alphabet=BASE64URL + ".", max_size=400))
def test_any_base64url_text_decodes_or_raises_tcf_error(value: str) -> None:
    decode_or_refuse("C" + value)


@given(data=st.binary(max_size=400))
def test_any_bytes_decode_or_raise_tcf_error(data: bytes) -> None:
    decode_or_refuse(to_base64url("".join(format(byte, "08b") for byte in data)))


@given(tc=tc_strings, cut=st.integers(0, 400), position=st.integers(0, 400), char=st.sampled_from(BASE64URL))
def test_damaged_valid_strings_decode_or_raise_tcf_error(
    tc: TCString, cut: int, position: int, char: str
) -> None:
    value = encode_tc_string(tc)
    decode_or_refuse(value[:cut])
    index = position % len(value)
    decode_or_refuse(value[:index] + char + value[index + 1 :])


# ---- mapping to Tactful purposes -----------------------------------------------------------------

ALL_TCF = frozenset(range(1, 12))
MAPPED = tuple(TCF_PURPOSES)


def core(consent: set[int], interests: set[int] | None = None, **changes: object) -> TCString:
    return tc_string(
        purposes_consent=frozenset(consent), purposes_li_transparency=frozenset(interests or ()), **changes
    )


def test_essential_is_never_gated_and_unencoded_purposes_stay_unset() -> None:
    result = tcf_purposes(core(set()))
    assert result.get(Purpose.ESSENTIAL) is True
    assert result.get(Purpose.MARKETING_EMAIL) is None
    assert result.get(Purpose.SALE_OR_SHARE) is None
    assert all(result.get(purpose) is False for purpose in MAPPED)


def test_full_consent_grants_every_mapped_purpose() -> None:
    result = tcf_purposes(core(set(ALL_TCF)))
    assert all(result.get(purpose) is True for purpose in MAPPED)
    assert result.segments_with_storage
    assert result.missing == {}
    assert result.source_segment is TCFSource.CORE


@pytest.mark.parametrize(
    ("purpose", "needed"),
    [
        (Purpose.ANALYTICS, {1, 8, 9}),
        (Purpose.SEGMENTS, {11}),
        (Purpose.BEHAVIORAL, {1, 11}),
        (Purpose.PREDICTIVE, {1, 5, 6}),
        (Purpose.INDIVIDUAL, {1, 5, 6}),
    ],
)
def test_each_purpose_needs_all_of_its_tcf_purposes(purpose: Purpose, needed: set[int]) -> None:
    assert tcf_purposes(core(needed)).get(purpose) is True
    for absent in needed:
        result = tcf_purposes(core(set(ALL_TCF) - {absent}))
        assert result.get(purpose) is False
        assert absent in result.missing[purpose]


@given(consent=ids(24, 24))
def test_a_purpose_holds_exactly_when_its_tcf_purposes_are_consented(consent: frozenset[int]) -> None:
    result = tcf_purposes(core(set(consent)))
    for purpose, needed in TCF_PURPOSES.items():
        assert result.get(purpose) is (needed <= consent)
    assert result.segments_with_storage is ({1, 11} <= consent)


def test_segments_with_a_stored_identifier_also_need_purpose_1() -> None:
    result = tcf_purposes(core({11}))
    assert result.get(Purpose.SEGMENTS) is True
    assert result.segments_with_storage is False
    assert tcf_purposes(core({1, 11})).segments_with_storage is True


@pytest.mark.parametrize("allow", [False, True])
def test_purpose_1_through_legitimate_interest_grants_nothing(allow: bool) -> None:
    result = tcf_purposes(core({5, 6, 8, 9}, interests=set(ALL_TCF)), allow_legitimate_interest=allow)
    for purpose in (Purpose.ANALYTICS, Purpose.BEHAVIORAL, Purpose.PREDICTIVE, Purpose.INDIVIDUAL):
        assert result.get(purpose) is False
        assert 1 in result.missing[purpose]
    assert result.segments_with_storage is False


def test_legitimate_interest_never_counts_for_purposes_5_and_6() -> None:
    result = tcf_purposes(core({1}, interests={5, 6}), allow_legitimate_interest=True)
    assert result.get(Purpose.PREDICTIVE) is False
    assert result.missing[Purpose.PREDICTIVE] == {5, 6}


def test_legitimate_interest_counts_for_8_9_11_only_when_the_regime_allows_it() -> None:
    tc = core({1}, interests={8, 9, 11})
    refused = tcf_purposes(tc)
    assert (refused.get(Purpose.ANALYTICS), refused.get(Purpose.SEGMENTS)) == (False, False)
    allowed = tcf_purposes(tc, allow_legitimate_interest=True)
    assert allowed.get(Purpose.ANALYTICS) is True
    assert allowed.get(Purpose.SEGMENTS) is True
    assert allowed.get(Purpose.BEHAVIORAL) is True


def test_the_publisher_segment_wins_over_the_core_purposes() -> None:
    refused = tcf_purposes(core(set(ALL_TCF), publisher_tc=publisher(set())))
    assert refused.source_segment is TCFSource.PUBLISHER
    assert all(refused.get(purpose) is False for purpose in MAPPED)
    granted = tcf_purposes(core(set(), publisher_tc=publisher(set(ALL_TCF))))
    assert granted.source_segment is TCFSource.PUBLISHER
    assert all(granted.get(purpose) is True for purpose in MAPPED)


def test_publisher_legitimate_interest_follows_the_same_rules() -> None:
    tc = core(set(), publisher_tc=publisher({8, 9}, interests={1, 11}))
    assert tcf_purposes(tc, allow_legitimate_interest=True).get(Purpose.SEGMENTS) is True
    assert tcf_purposes(tc, allow_legitimate_interest=True).get(Purpose.ANALYTICS) is False
    assert tcf_purposes(tc).get(Purpose.SEGMENTS) is False


def test_special_feature_1_is_precise_location() -> None:
    assert tcf_purposes(core(set(), special_feature_optins=frozenset({1}))).precise_location is True
    assert tcf_purposes(core(set(), special_feature_optins=frozenset({2}))).precise_location is False
    assert tcf_purposes(core(set())).precise_location is False


def test_a_configured_vendor_needs_its_own_consent() -> None:
    tc = core(set(ALL_TCF), special_feature_optins=frozenset({1}), vendor_consents=frozenset({7}))
    absent = tcf_purposes(tc, vendor_id=42)
    assert all(absent.get(purpose) is False for purpose in MAPPED)
    assert absent.precise_location is False
    present = tcf_purposes(tc, vendor_id=7)
    assert all(present.get(purpose) is True for purpose in MAPPED)
    assert present.precise_location is True


def test_a_vendor_on_legitimate_interest_needs_its_interest_bit() -> None:
    tc = core({1}, interests={8, 9}, vendor_consents=frozenset({7}))
    assert tcf_purposes(tc, vendor_id=7, allow_legitimate_interest=True).get(Purpose.ANALYTICS) is False
    tc = replace(tc, vendor_legitimate_interests=frozenset({7}))
    assert tcf_purposes(tc, vendor_id=7, allow_legitimate_interest=True).get(Purpose.ANALYTICS) is True


def test_the_vendor_is_not_required_when_the_publisher_segment_answers() -> None:
    tc = core(set(), vendor_consents=frozenset(), publisher_tc=publisher(set(ALL_TCF)))
    assert tcf_purposes(tc, vendor_id=42).get(Purpose.INDIVIDUAL) is True


@pytest.mark.parametrize(
    ("kind", "consent_counts", "interest_counts"),
    [
        (RestrictionType.NOT_ALLOWED, False, False),
        (RestrictionType.REQUIRE_CONSENT, True, False),
        (RestrictionType.REQUIRE_LEGITIMATE_INTEREST, False, True),
    ],
)
def test_publisher_restrictions_on_the_vendor(
    kind: RestrictionType, consent_counts: bool, interest_counts: bool
) -> None:
    restriction = PublisherRestriction(purpose_id=8, restriction_type=kind, vendor_ranges=((5, 9),))
    vendors = frozenset({7, 20})
    by_consent = replace(core({1, 8, 9}), vendor_consents=vendors, vendor_legitimate_interests=vendors)
    by_consent = replace(by_consent, publisher_restrictions=(restriction,))
    by_interest = replace(
        by_consent, purposes_consent=frozenset({1, 9}), purposes_li_transparency=frozenset({8})
    )
    assert tcf_purposes(by_consent, vendor_id=7).get(Purpose.ANALYTICS) is consent_counts
    lawful_interest = tcf_purposes(by_interest, vendor_id=7, allow_legitimate_interest=True)
    assert lawful_interest.get(Purpose.ANALYTICS) is interest_counts
    # Vendor 20 is outside the restricted range and unaffected.
    assert tcf_purposes(by_consent, vendor_id=20).get(Purpose.ANALYTICS) is True
    assert tcf_purposes(by_interest, vendor_id=20, allow_legitimate_interest=True).get(Purpose.ANALYTICS)


def test_purpose_one_not_disclosed_counts_as_not_consented() -> None:
    tc = core(set(ALL_TCF) - {1}, purpose_one_treatment=True)
    assert tcf_purposes(tc).get(Purpose.ANALYTICS) is False
    assert tcf_purposes(tc).get(Purpose.SEGMENTS) is True
