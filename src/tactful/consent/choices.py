"""Consent choices as ledger changes: what a TC string says, and what a request body says.

A "no" after a "yes" is recorded as a withdrawal, otherwise as a denial, so the ledger tells the two
apart; the proof (request id, key id, the TC string itself) travels with every change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tactful.consent.fold import ConsentAction
from tactful.consent.schemas import ConsentChange, ConsentUpdate, TargetKind
from tactful.consent.tcf import TCF_PURPOSES, decode_tc_string, tcf_purposes
from tactful.errors import InvalidInput
from tactful.policy.state import SPECIAL_FEATURE_1, ConsentSource, ConsentState, ConsentStatus
from tactful.types import Purpose

_SEGMENTS = Purpose.SEGMENTS


def _refusal(current: ConsentStatus) -> ConsentAction:
    # A "no" after a "yes" is a withdrawal; otherwise a denial.
    return ConsentAction.WITHDRAWN if current is ConsentStatus.GRANTED else ConsentAction.DENIED


def tcf_changes(
    text: str, *, vendor_id: int | None, proof: dict[str, str], current: ConsentState, at: datetime
) -> list[ConsentChange]:
    """What a TC string says, as ledger changes with source `tcf`; the string itself is the proof.
    `essential` is never recorded (TCF implies it); TCF says nothing about the other purposes."""
    read = tcf_purposes(decode_tc_string(text), vendor_id=vendor_id)
    proof = proof | {"tcf_string": text.strip(), "tcf_segment": read.source_segment.value}
    changes: list[ConsentChange] = []
    for purpose in TCF_PURPOSES:
        given = read.segments_with_storage if purpose is _SEGMENTS else read.granted[purpose]
        if purpose is _SEGMENTS and not given and read.granted[purpose]:
            # Purpose 11 without 1: fine for request context, not for a stored profile. Recording
            # nothing keeps the request-context reading open; a denial would close it.
            continue
        status = current.state(purpose, at=at).status
        action = ConsentAction.GRANTED if given else _refusal(status)
        changes.append(ConsentChange.for_purpose(purpose, action, ConsentSource.TCF, proof=proof))
    feature = current.explicit_state(SPECIAL_FEATURE_1, at=at).status
    action = ConsentAction.GRANTED if read.precise_location else _refusal(feature)
    changes.append(ConsentChange.for_explicit(SPECIAL_FEATURE_1, action, ConsentSource.TCF, proof=proof))
    return changes


GPC_CHOICE = {Purpose.SALE_OR_SHARE: False}
"""All a body with source `gpc` may say: Global Privacy Control is an opt-out of sale and sharing."""


def check_source(body: ConsentUpdate) -> None:
    """Refuse a body whose choices its `source` cannot have made (422, `source_mismatch`, or
    `tcf_string_required`): the source is recorded as where each choice came from, so it must be
    true of every one. A TC string's choices are those it encodes: source `tcf` comes with a
    `tcf_string` and no other choice. GPC says one thing, no to `sale_or_share`."""
    others = bool(body.explicit or body.parental_consent)
    if body.source == "tcf":
        if body.tcf_string is None:
            raise InvalidInput("source tcf needs a tcf_string", code="tcf_string_required", field="source")
        if body.purposes or others:
            raise InvalidInput(
                "with source tcf the choices are those of the tcf_string: send other choices with their "
                "own source",
                code="source_mismatch",
                field="source",
            )
    if body.source == "gpc" and (body.purposes != GPC_CHOICE or others or body.tcf_string):
        raise InvalidInput(
            "source gpc records a refusal of sale_or_share and nothing else: "
            'purposes {"sale_or_share": false}',
            code="source_mismatch",
            field="source",
        )


def body_changes(
    body: ConsentUpdate, *, proof: dict[str, str], current: ConsentState, at: datetime
) -> list[ConsentChange]:
    source = ConsentSource(body.source)
    common: dict[str, Any] = {"notice_version": body.notice_version, "proof": proof}
    changes: list[ConsentChange] = []
    for purpose, given in sorted(body.purposes.items()):
        action = ConsentAction.GRANTED if given else _refusal(current.state(purpose, at=at).status)
        changes.append(ConsentChange.for_purpose(purpose, action, source, **common))
    for name, given in sorted(body.explicit.items()):
        action = ConsentAction.GRANTED if given else _refusal(current.explicit_state(name, at=at).status)
        changes.append(ConsentChange.for_explicit(name, action, source, **common))
    parental = body.parental_consent
    if parental is not None:
        granted = parental.granted
        action = ConsentAction.GRANTED if granted else _refusal(current.parental_state(at=at).status)
        extra = {"reference": parental.reference} if parental.reference else {}
        changes.append(
            ConsentChange(
                TargetKind.PARENTAL,
                action,
                source,
                notice_version=body.notice_version,
                method=parental.method,
                proof=proof | extra,
            )
        )
    return changes
