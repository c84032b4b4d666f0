"""The consent contexts events carry are parsed once per distinct content in a request: the answer
must be the one a parse of every context would give."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tactful.config import DEFAULT_CONSENT_CATEGORIES
from tactful.consent import intake

_NAMES = st.sampled_from([*DEFAULT_CONSENT_CATEGORIES, "Unknown", "1"])
_IDS = st.lists(st.one_of(_NAMES, st.integers(0, 3), st.booleans(), st.none()), max_size=3)
_CONTEXTS = st.fixed_dictionaries(
    {},
    optional={
        "categoryPreferences": st.one_of(
            st.dictionaries(_NAMES, st.one_of(st.booleans(), st.integers(0, 1), st.none()), max_size=4),
            st.text(max_size=2),
        ),
        "consentManagement": st.fixed_dictionaries(
            {}, optional={"allowedConsentIds": _IDS, "deniedConsentIds": _IDS}
        ),
    },
)


def _copy(value: Any) -> Any:
    """The same content in new objects, as every message of a parsed body has its own."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@given(st.lists(st.tuples(_CONTEXTS, st.booleans()), max_size=12))
def test_a_request_memo_answers_as_parsing_every_context_does(
    contexts: list[tuple[dict[str, Any], bool]],
) -> None:
    mapping = DEFAULT_CONSENT_CATEGORIES
    memo: dict[object, tuple[bool, bool]] = {}
    seen: list[dict[str, Any]] = []
    for context, again in contexts:
        # Repeats of earlier contexts, in new objects, are what the memo is for.
        consent = _copy(seen[-1]) if again and seen else context
        seen.append(consent)
        assert intake.carried_kinds(consent, mapping=mapping, memo=memo) == intake.carried_kinds(
            consent, mapping=mapping
        )


@given(_CONTEXTS, _CONTEXTS)
def test_equal_content_keys_mean_equal_choices(first: dict[str, Any], second: dict[str, Any]) -> None:
    mapping = DEFAULT_CONSENT_CATEGORIES
    if intake.content_key(first) == intake.content_key(second):
        assert intake.carried_changes(first, mapping=mapping, proof={}) == intake.carried_changes(
            second, mapping=mapping, proof={}
        )
    assert intake.content_key(_copy(first)) == intake.content_key(first)
