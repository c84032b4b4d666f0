"""An OpenFeature provider over Tactful's decisions: each placement is a flag.

    openfeature client.get_object_details("home_hero", default, EvaluationContext(...))
        └─▶ TactfulProvider ──▶ Client.decide(["home_hero"], user_id | anonymous_id, context)
                              ◀── Decision: content → value, variation → variant, strategy → reason,
                                   level, decision id, legal basis → flag_metadata

- The evaluation context's `targeting_key` is the user id; without one, its `anonymous_id`
  attribute names the visitor. Its `context` attribute (a Segment context object: locale, device,
  page...) goes with the decision and is not stored; `gpc: true` forwards a browser's `Sec-GPC: 1`.
- Reasons: `TARGETING_MATCH` for a rule, `SPLIT` for a split, bandit or holdout draw, `DEFAULT` for
  the placement's default, and `CONSENT_DOWNGRADE` when the answer came from below the level the
  placement's best live experience needs, because the person's consent does not reach it.
- A placement's content is usually an object (`get_object_details`); a string, number or boolean
  placement answers the matching typed call, any other type answers `TYPE_MISMATCH` with the
  default. An unknown placement is `FLAG_NOT_FOUND`; an unreachable server gives the default with
  an error, never an exception in the caller's page.
- `track()` sends an outcome as a track event; pass `decision_id` (from `flag_metadata`) among the
  tracking attributes to link it to the decision it followed.

Install with the `openfeature` extra (`pip install 'tactful[openfeature]'`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, cast

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from tactful.sdk.client import Client
from tactful.sdk.errors import APIError, TactfulClientError
from tactful.sdk.types import Decision

CONSENT_DOWNGRADE = "CONSENT_DOWNGRADE"
"""A custom reason: the person's consent held the answer below the placement's best experience."""

UNKNOWN_PLACEMENT = frozenset({"unknown_placement"})
"""Problem codes of `POST /v1/decide` that mean the flag does not exist."""

_REASONS: Mapping[str, str] = {
    "rule": Reason.TARGETING_MATCH,
    "split": Reason.SPLIT,
    "bandit": Reason.SPLIT,
    "holdout": Reason.SPLIT,
    "default": Reason.DEFAULT,
    "forced": Reason.STATIC,
}

T = TypeVar("T")


def reason_of(decision: Decision) -> str:
    """The OpenFeature reason of a decision."""
    if decision.explanation.get("consent_downgrade"):
        return CONSENT_DOWNGRADE
    return _REASONS.get(decision.strategy, Reason.UNKNOWN)


def metadata_of(decision: Decision) -> dict[str, bool | int | float | str]:
    """What a flag's metadata says of the decision: flat values only, as OpenFeature wants."""
    basis = decision.explanation.get("legal_basis")
    if isinstance(basis, Mapping):
        basis = ",".join(f"{purpose}:{value}" for purpose, value in sorted(basis.items()))
    found: dict[str, bool | int | float | str] = {
        "level": decision.level,
        "decision_id": decision.decision_id,
        "strategy": decision.strategy,
        "propensity": decision.propensity,
    }
    if decision.experience:
        found["experience"] = decision.experience
    if isinstance(basis, str) and basis:
        found["legal_basis"] = basis
    return found


class TactfulProvider(AbstractProvider):
    """Tactful's placements as OpenFeature flags, through a `Client` (a server-scope key)."""

    def __init__(self, *, base_url: str = "", api_key: str = "", client: Client | None = None) -> None:
        super().__init__()
        self.client = client or Client(base_url=base_url, api_key=api_key)

    def get_metadata(self) -> Metadata:
        return Metadata(name="tactful")

    def shutdown(self) -> None:
        self.client.close()

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Send an outcome at once (a track event); its `decision_id` attribute links it to a decision."""
        subject = _subject(evaluation_context)
        if subject is None:
            return  # OpenFeature's track never raises: an outcome of nobody is nothing to send
        properties: dict[str, Any] = dict(tracking_event_details.attributes) if tracking_event_details else {}
        if tracking_event_details is not None and tracking_event_details.value is not None:
            properties.setdefault("value", tracking_event_details.value)
        self.client.track(
            tracking_event_name, user_id=subject[0], anonymous_id=subject[1], properties=properties
        )
        self.client.flush()

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, (Mapping, list))

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, (str,))

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, (bool,))

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, (int,))

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, (float, int))

    def _resolve(
        self,
        flag_key: str,
        default_value: T,
        evaluation_context: EvaluationContext | None,
        types: tuple[type, ...],
    ) -> FlagResolutionDetails[T]:
        subject = _subject(evaluation_context)
        if subject is None:
            return _failed(
                default_value, ErrorCode.TARGETING_KEY_MISSING, "give a targeting key or anonymous_id"
            )
        attributes = evaluation_context.attributes if evaluation_context else {}
        context = attributes.get("context")
        try:
            [decision] = self.client.decide(
                [flag_key],
                user_id=subject[0],
                anonymous_id=subject[1],
                context=context if isinstance(context, Mapping) else None,
                gpc=attributes.get("gpc") is True,
            )
        except APIError as error:
            code = ErrorCode.FLAG_NOT_FOUND if error.code in UNKNOWN_PLACEMENT else ErrorCode.GENERAL
            return _failed(default_value, code, error.message)
        except (TactfulClientError, ValueError) as error:
            return _failed(default_value, ErrorCode.GENERAL, str(error))
        value = decision.content
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return _failed(default_value, ErrorCode.TYPE_MISMATCH, f"{flag_key} holds {type(value).__name__}")
        return FlagResolutionDetails(
            value=cast(T, value),
            reason=reason_of(decision),
            variant=decision.variation,
            flag_metadata=metadata_of(decision),
        )


def _subject(context: EvaluationContext | None) -> tuple[str | None, str | None] | None:
    if context is None:
        return None
    anonymous = context.attributes.get("anonymous_id")
    anonymous_id = anonymous if isinstance(anonymous, str) and anonymous else None
    if not context.targeting_key and anonymous_id is None:
        return None
    return context.targeting_key or None, anonymous_id


def _failed(default_value: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value, reason=Reason.ERROR, error_code=code, error_message=message
    )
