"""Whatever content a placement is created with, an accepted one has a non-empty default without a
null anywhere, and an e-mail placement's default has a subject line and body blocks."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tactful.crypto import Keystore
from tactful.decide import service as decide_service
from tactful.decide.schemas import PlacementCreate
from tactful.errors import InvalidDefinition
from tests.decide.model_builders import ACTOR, T0

_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=5)
)
json_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["subject", "body", "x"]), inner, max_size=3)
    ),
    max_leaves=8,
)
_numbers = itertools.count()


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _empty(value: Any) -> bool:
    return value in ("", [], {}) or (isinstance(value, str) and not value.strip())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=150)
@given(content=json_values, channel=st.sampled_from(["web", "app", "email"]))
def test_an_accepted_placement_has_a_full_default(
    session: Session, keystore: Keystore, content: Any, channel: str
) -> None:
    try:
        spec = PlacementCreate.model_validate(
            {"key": f"p{next(_numbers)}", "channel": channel, "default": {"content": content}}
        )
    except ValueError:
        return  # refused by the schema (a null or a float past the range at the top)
    try:
        created = decide_service.create_placement(session, keystore=keystore, spec=spec, actor=ACTOR, at=T0)
    except InvalidDefinition:
        return
    stored = decide_service.get_placement(session, key=created.key).default.content
    assert not _empty(stored)
    assert not _has_null(stored)
    if channel == "email":
        assert isinstance(stored, dict)
        assert isinstance(stored["subject"], str)
        assert stored["subject"].strip()
        assert isinstance(stored["body"], list)
        assert stored["body"]
        assert not any(_empty(block) for block in stored["body"])
