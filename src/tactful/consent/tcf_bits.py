"""The bit level of a TC string: base64url segments to bits, and a bounded reader over them.

Everything here is written against the IAB Tech Lab "Transparency and Consent String and Global
Vendor List Format" (v2.2): fields are big-endian, bits are numbered left to right, each segment is
base64url without padding and ends with zero bits up to the next 6-bit boundary.

The reader works on a string of '0'/'1' characters rather than one big integer: slicing a string
costs the size of the slice, so a decode is linear in the input, whatever the input claims.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from tactful.errors import InvalidInput

MAX_TC_STRING_CHARS = 64 * 1024
"""Longer strings are refused before any decoding (a real one is a few hundred characters)."""

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTETS: dict[str, str] = {char: format(index, "06b") for index, char in enumerate(_ALPHABET)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TCFReason(StrEnum):
    """Why a TC string was refused; stable values that tests and callers can match on."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    BAD_BASE64URL = "bad_base64url"
    TRUNCATED = "truncated"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_SEGMENT = "unknown_segment"
    DUPLICATE_SEGMENT = "duplicate_segment"
    BAD_LETTER = "bad_letter"
    BAD_RANGE = "bad_range"
    BAD_RESTRICTION = "bad_restriction"


class TCFError(InvalidInput):
    """A TC string that cannot be decoded. The API answers 422 with code `tcf_invalid`."""

    code = "tcf_invalid"

    def __init__(self, reason: TCFReason, detail: str) -> None:
        super().__init__(f"invalid TC string ({reason}): {detail}", field="tcf_string")
        self.reason = reason
        self.detail = detail


def segment_bits(segment: str, *, name: str) -> str:
    """The bits of one base64url segment, as a string of '0' and '1'."""
    if not segment:
        raise TCFError(TCFReason.EMPTY, f"the {name} segment is empty")
    try:
        return "".join([_SEXTETS[char] for char in segment])
    except KeyError:
        # The spec forbids padding and the '+' '/' of plain base64; name neither the character
        # nor its position in logs, only the class of fault.
        raise TCFError(TCFReason.BAD_BASE64URL, f"the {name} segment is not base64url") from None


class BitReader:
    """Reads fields one after another from a segment's bits; running past the end is an error."""

    __slots__ = ("_bits", "_pos", "segment")

    def __init__(self, bits: str, *, segment: str) -> None:
        self._bits = bits
        self._pos = 0
        self.segment = segment

    @property
    def remaining(self) -> int:
        return len(self._bits) - self._pos

    def _take(self, n: int, field: str) -> str:
        end = self._pos + n
        if end > len(self._bits):
            raise TCFError(TCFReason.TRUNCATED, f"the {self.segment} segment ends inside {field}")
        chunk = self._bits[self._pos : end]
        self._pos = end
        return chunk

    def number(self, n: int, field: str) -> int:
        return int(self._take(n, field), 2)

    def flag(self, field: str) -> bool:
        return self._take(1, field) == "1"

    def flags(self, n: int, field: str) -> frozenset[int]:
        """A bit field read as the 1-based ids of its set bits."""
        chunk = self._take(n, field)
        found: list[int] = []
        index = chunk.find("1")
        while index != -1:
            found.append(index + 1)
            index = chunk.find("1", index + 1)
        return frozenset(found)

    def letters(self, field: str) -> str:
        """Two letters of 6 bits each, a=0 .. z=25, returned upper-case as CMPs show them."""
        chars: list[str] = []
        for _ in range(2):
            value = self.number(6, field)
            if value > 25:
                raise TCFError(TCFReason.BAD_LETTER, f"{field} holds a value that is not a letter")
            chars.append(chr(ord("A") + value))
        return "".join(chars)

    def deciseconds(self, field: str) -> datetime:
        """A 36-bit count of tenths of a second since the epoch (v2.2 CMPs round it to the day)."""
        return _EPOCH + timedelta(milliseconds=100 * self.number(36, field))

    def ranges(self, field: str, *, max_id: int | None) -> tuple[tuple[int, int], ...]:
        """A 12-bit count of range entries, each a single id or an inclusive start..end pair.

        Entries are returned sorted and merged, so overlapping or repeated entries cost nothing
        downstream. Ids start at 1; when `max_id` is given no id may exceed it.
        """
        count = self.number(12, field)
        entries: list[tuple[int, int]] = []
        for _ in range(count):
            is_range = self.flag(field)
            start = self.number(16, field)
            end = self.number(16, field) if is_range else start
            if start < 1 or end < start:
                raise TCFError(TCFReason.BAD_RANGE, f"{field} has a range that is empty or starts at 0")
            if max_id is not None and end > max_id:
                raise TCFError(TCFReason.BAD_RANGE, f"{field} names an id above its maximum vendor id")
            entries.append((start, end))
        return merge_ranges(entries)

    def vendor_section(self, field: str) -> frozenset[int]:
        """MaxVendorId, IsRangeEncoding, then a bit field or range entries.

        MaxVendorId is 16 bits, so no section can name more than 65,535 vendors, and the merged
        ranges expand to at most that many ids however many entries overlap.
        """
        max_id = self.number(16, field)
        if not self.flag(field):
            return self.flags(max_id, field)
        return frozenset(
            vendor for start, end in self.ranges(field, max_id=max_id) for vendor in range(start, end + 1)
        )


def merge_ranges(entries: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort inclusive ranges and join those that overlap or touch."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(entries):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)
