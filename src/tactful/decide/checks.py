"""Structural checks of placements, audiences and experiences: each problem names the field at fault
and says how to fix it, in a sentence a marketer can act on. Pure: plain data in, problems out.

    content, templates, condition ──▶ json_problems (no nulls, no NUL or lone surrogates, finite
                                      numbers, bounded size and depth)
    placement's default ───────────▶ content_problems (non-empty; an e-mail's subject and body)
    experience ────────────────────▶ experience_problems (variations per strategy, unique keys,
                                      schedule order, its placement's channel)

The service runs them on every save and `publishing` again on publish, so a definition that is
stored is always one that could be published structurally.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

Path = tuple[str | int, ...]

MAX_CONTENT_BYTES = 16_384
MAX_CONDITION_BYTES = 8_192
MAX_TEMPLATE_CHARS = 8_192
MAX_DEPTH = 12
MAX_TEXT = 4_096
SAFE_INTEGER = 2**53
"""JavaScript's exact integers: content travels to browsers."""


class Code(StrEnum):
    """Why a definition is refused; `Problem.message` words it for people."""

    CONTENT_EMPTY = "content_empty"
    CONTENT_NULL = "content_null"
    CONTENT_NUMBER = "content_number"
    CONTENT_TEXT = "content_text"
    CONTENT_TOO_LARGE = "content_too_large"
    CONTENT_TOO_DEEP = "content_too_deep"
    EMAIL_SUBJECT = "email_subject_missing"
    EMAIL_BODY = "email_body_missing"
    VARIATION_KEY_REPEATED = "variation_key_repeated"
    RULE_VARIATIONS = "rule_needs_one_variation"
    SPLIT_VARIATIONS = "split_needs_two_variations"
    BANDIT_VARIATIONS = "bandit_needs_two_variations"
    SCHEDULE_ORDER = "schedule_end_before_start"
    SCHEDULE_ENDED = "schedule_ended"
    PLACEMENT_UNKNOWN = "placement_unknown"
    PLACEMENT_FIXED = "placement_fixed"
    CHANNEL_FIXED = "channel_fixed"
    AUDIENCE_UNKNOWN = "audience_unknown"
    TIME_OUT_OF_RANGE = "time_out_of_range"
    CONDITION_INVALID = "condition_invalid"
    TEMPLATE_INVALID = "template_invalid"
    UNDECLARED_ATOM = "undeclared_atom"
    NEEDS_HUMAN_REVIEW = "significant_effect_needs_human_review"
    SIGNIFICANT_SPECIAL = "significant_effect_reads_special_category"


@dataclass(frozen=True)
class Problem:
    """One fault: where (a path into the request body), why (a code) and how to fix it (a sentence)."""

    path: Path
    code: Code
    message: str

    @property
    def field(self) -> str:
        """The path written as a marketer reads it: `variations[1].content.title`."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text


def where(path: Path) -> str:
    return Problem(path, Code.CONTENT_NULL, "").field or "the value"


# -- JSON values ----------------------------------------------------------------------------------


def _text_fault(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds an unpaired surrogate, which is not text; send it as valid UTF-8"
    if len(text) > MAX_TEXT:
        return f"is longer than {MAX_TEXT} characters; shorten it"
    return None


def json_problems(value: object, path: Path, *, max_bytes: int, nulls: bool = False) -> list[Problem]:
    """Faults of a JSON value stored as content or a condition: nulls (a placeholder a site would
    show as empty), NUL characters and unpaired surrogates (no database stores them), numbers that
    are not finite or not exact in JavaScript, and a size or depth past the caps."""
    problems: list[Problem] = []
    _walk(value, path, 0, problems, nulls)
    if problems:
        return problems
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > max_bytes:
        problems.append(
            Problem(
                path,
                Code.CONTENT_TOO_LARGE,
                f"{where(path)} is {size} bytes of JSON; the most is {max_bytes}: move large media to "
                "URLs and keep the text short",
            )
        )
    return problems


def _walk(value: object, path: Path, depth: int, problems: list[Problem], nulls: bool) -> None:
    if len(problems) >= 20:
        return
    if depth > MAX_DEPTH:
        problems.append(
            Problem(
                path,
                Code.CONTENT_TOO_DEEP,
                f"{where(path)} nests deeper than {MAX_DEPTH} levels; flatten it",
            )
        )
        return
    if value is None:
        if nulls:
            return
        problems.append(
            Problem(
                path,
                Code.CONTENT_NULL,
                f"{where(path)} is null; give it a value, or leave the member out",
            )
        )
    elif isinstance(value, str):
        fault = _text_fault(value)
        if fault:
            problems.append(Problem(path, Code.CONTENT_TEXT, f"{where(path)} {fault}"))
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) >= SAFE_INTEGER:
            problems.append(
                Problem(
                    path,
                    Code.CONTENT_NUMBER,
                    f"{where(path)} is an integer past 2^53, which browsers cannot read exactly; "
                    "send it as a string",
                )
            )
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append(
                Problem(path, Code.CONTENT_NUMBER, f"{where(path)} is not a finite number; give a number")
            )
    elif isinstance(value, Mapping):
        for name, item in value.items():
            fault = _text_fault(str(name))
            if fault:
                problems.append(Problem(path, Code.CONTENT_TEXT, f"a member name in {where(path)} {fault}"))
            _walk(item, (*path, str(name)), depth + 1, problems, nulls)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, (*path, index), depth + 1, problems, nulls)
    else:
        problems.append(
            Problem(path, Code.CONTENT_TEXT, f"{where(path)} is not JSON; give text, a number or a list")
        )


def text_problems(texts: Mapping[Path, str | None]) -> list[Problem]:
    """NUL characters and unpaired surrogates in plain text fields (names, descriptions)."""
    problems: list[Problem] = []
    for path, text in texts.items():
        fault = _text_fault(text) if text is not None else None
        if fault:
            problems.append(Problem(path, Code.CONTENT_TEXT, f"{where(path)} {fault}"))
    return problems


# -- content ----------------------------------------------------------------------------------------


def _empty(value: object) -> bool:
    return value == "" or value == [] or value == {} or (isinstance(value, str) and not value.strip())


def content_problems(
    content: object, templates: Mapping[str, str], path: Path, *, channel: str
) -> list[Problem]:
    """A variation's content: non-empty, null-free JSON; an e-mail's holds a subject line and body
    blocks. Its templates: text, within the caps (the template language checks them on publish)."""
    problems = json_problems(content, (*path, "content"), max_bytes=MAX_CONTENT_BYTES)
    if not problems and _empty(content):
        problems.append(
            Problem(
                (*path, "content"),
                Code.CONTENT_EMPTY,
                f"{where((*path, 'content'))} is empty; give what the placement shows, e.g. "
                '{"headline": "Welcome"}',
            )
        )
    if channel == "email" and not problems:
        problems += _email_problems(content, (*path, "content"))
    for name, source in templates.items():
        fault = _text_fault(source) if len(source) <= MAX_TEMPLATE_CHARS else None
        if len(source) > MAX_TEMPLATE_CHARS:
            fault = f"is longer than {MAX_TEMPLATE_CHARS} characters; shorten it"
        if fault or not source.strip():
            problems.append(
                Problem(
                    (*path, "templates", name),
                    Code.CONTENT_TEXT,
                    f"{where((*path, 'templates', name))} {fault or 'is empty; give the template text'}",
                )
            )
    return problems


def _email_problems(content: object, path: Path) -> list[Problem]:
    if not isinstance(content, Mapping):
        return [
            Problem(
                path,
                Code.EMAIL_SUBJECT,
                f"{where(path)} of an e-mail is an object with a subject line and body blocks, e.g. "
                '{"subject": "Hello", "body": [{"text": "..."}]}',
            )
        ]
    problems = []
    subject = content.get("subject")
    if not isinstance(subject, str) or not subject.strip():
        problems.append(
            Problem(
                (*path, "subject"),
                Code.EMAIL_SUBJECT,
                f"{where((*path, 'subject'))} is missing: an e-mail needs a subject line as text",
            )
        )
    body = content.get("body")
    if not isinstance(body, list) or not body or any(_empty(block) for block in body):
        problems.append(
            Problem(
                (*path, "body"),
                Code.EMAIL_BODY,
                f"{where((*path, 'body'))} is missing: an e-mail needs a list of non-empty body blocks, "
                'e.g. [{"text": "..."}]',
            )
        )
    return problems


# -- experiences --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariationData:
    key: str
    content: object
    templates: Mapping[str, str]
    weight: float


@dataclass(frozen=True)
class ExperienceData:
    """An experience's definition as plain data, whether from a request or a stored snapshot."""

    strategy: str
    starts_at: datetime | None
    ends_at: datetime | None
    variations: Sequence[VariationData]


def experience_problems(experience: ExperienceData, *, channel: str) -> list[Problem]:
    """Variations that fit the strategy, unique variation keys, content fit for the placement's channel,
    and a schedule that ends after it starts."""
    problems: list[Problem] = []
    count = len(experience.variations)
    if experience.strategy == "rule" and count != 1:
        problems.append(
            Problem(
                ("variations",),
                Code.RULE_VARIATIONS,
                f"a rule shows one variation to everyone its audience matches, and this one has {count}; "
                "keep one, or choose the strategy `split` to test several",
            )
        )
    elif experience.strategy in ("split", "bandit") and count < 2:
        code = Code.SPLIT_VARIATIONS if experience.strategy == "split" else Code.BANDIT_VARIATIONS
        problems.append(
            Problem(
                ("variations",),
                code,
                f"a {experience.strategy} chooses among variations, and this one has {count}; add another "
                "variation, or choose the strategy `rule`",
            )
        )
    seen: dict[str, int] = {}
    for index, variation in enumerate(experience.variations):
        if variation.key in seen:
            problems.append(
                Problem(
                    ("variations", index, "key"),
                    Code.VARIATION_KEY_REPEATED,
                    f"the variation key {variation.key!r} is also the key of "
                    f"variations[{seen[variation.key]}]; give each variation its own key",
                )
            )
        seen.setdefault(variation.key, index)
        problems += content_problems(
            variation.content, variation.templates, ("variations", index), channel=channel
        )
    if experience.starts_at and experience.ends_at and experience.ends_at <= experience.starts_at:
        problems.append(
            Problem(
                ("ends_at",),
                Code.SCHEDULE_ORDER,
                "the schedule ends before it starts; set `ends_at` after `starts_at` (times in UTC)",
            )
        )
    return problems
