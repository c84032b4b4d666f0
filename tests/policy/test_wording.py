"""The words of the gate's reasons: one table covers every code in every language, and every reason
the gate gives in its specification reads as a sentence that names its parameters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tactful.policy import Allowance, Code, Reason, Verdict
from tactful.policy.wording import CLAUSES, STATUS, TABLE, Language, words
from tests.policy.test_cases import SPEC, run


def given_reasons(allowance: Allowance) -> Iterator[Reason | Verdict]:
    """Every reason an Allowance gives: purposes, refused atoms, levels, learning, Art. 22."""
    yield from allowance.purposes.values()
    yield from allowance.refusals.values()
    yield from allowance.level_reasons.values()
    if allowance.learn_reason is not None:
        yield allowance.learn_reason
    yield allowance.significant_decisions


def every_case_reason() -> list[tuple[Code, tuple[tuple[str, str], ...]]]:
    found: set[tuple[Code, tuple[tuple[str, str], ...]]] = set()
    for case in SPEC["cases"]:
        allowance, _ = run(case)
        found |= {(r.code, r.params) for r in given_reasons(allowance)}
    return sorted(found)


CASE_REASONS = every_case_reason()


def test_the_table_has_every_code_in_every_language() -> None:
    assert set(TABLE) == set(Code)
    for code, texts in TABLE.items():
        assert len(texts) == len(Language), code
        assert all(text.strip() for text in texts), code
    for texts in (*CLAUSES.values(), *STATUS.values()):
        assert len(texts) == len(Language)


@pytest.mark.parametrize("language", list(Language))
def test_every_reason_of_the_specification_reads_as_a_sentence_naming_its_parameters(
    language: Language,
) -> None:
    # The specification reaches most codes; each reads without a placeholder left, and says the
    # value of each of its parameters (a consent status in the reader's words).
    assert len({code for code, _ in CASE_REASONS}) >= 20
    for code, params in CASE_REASONS:
        text = words(code, params, language)
        assert "{" not in text, (code, text)
        for name, value in params:
            said = STATUS[value][list(Language).index(language)] if name == "status" else value
            assert said in text, (code, name, text)


def test_a_reason_in_english_and_in_swedish() -> None:
    params: Mapping[str, Any] = {"purpose": "analytics", "regime": "gdpr", "status": "withdrawn"}
    missing = Reason.of(Code.CONSENT_MISSING, **params)
    assert words(missing.code, missing.params) == "analytics needs consent, which is withdrawn (gdpr)"
    assert (
        words(missing.code, missing.params, Language.SV)
        == "analytics kräver samtycke, som är återkallat (gdpr)"
    )
    parent = Reason.of(
        Code.CONSENT_GRANTED, purpose="analytics", regime="gdpr", parental_method="signed_form"
    )
    assert words(parent.code, parent.params) == (
        "consent for analytics granted (gdpr), with a parent's consent (signed_form)"
    )
