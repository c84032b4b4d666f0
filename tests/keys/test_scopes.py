from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.keys.schemas import Scope

ALLOWED = {
    (Scope.WRITE, Scope.WRITE),
    (Scope.SERVER, Scope.WRITE),
    (Scope.SERVER, Scope.SERVER),
    (Scope.ADMIN, Scope.WRITE),
    (Scope.ADMIN, Scope.SERVER),
    (Scope.ADMIN, Scope.ADMIN),
}


@pytest.mark.parametrize("held", list(Scope))
@pytest.mark.parametrize("required", list(Scope))
def test_scopes_nest_write_server_admin(held: Scope, required: Scope) -> None:
    assert held.allows(required) == ((held, required) in ALLOWED)


@given(st.sampled_from(Scope), st.sampled_from(Scope), st.sampled_from(Scope))
def test_allows_is_a_total_order(a: Scope, b: Scope, c: Scope) -> None:
    assert a.allows(a)
    assert a.allows(b) or b.allows(a)
    if a.allows(b) and b.allows(c):
        assert a.allows(c)
    if a.allows(b) and b.allows(a):
        assert a == b


def test_scope_values_are_the_public_names() -> None:
    assert [s.value for s in Scope] == ["write", "server", "admin"]
