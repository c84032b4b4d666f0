"""The deployment's regimes come from settings once per process; a bad one refuses to start."""

from __future__ import annotations

import pytest

from tactful.config import PolicySettings
from tactful.consent.regimes import configured_regimes
from tactful.errors import ConfigurationError
from tactful.policy.regimes import BUILTIN_REGIMES


def test_builtins_without_configuration() -> None:
    assert {r.name for r in configured_regimes(PolicySettings())} == set(BUILTIN_REGIMES)


def test_an_override_keeps_where_the_builtin_applies() -> None:
    regimes = {r.name: r for r in configured_regimes(PolicySettings(regimes={"gdpr": {"consent_age": 14}}))}
    assert regimes["gdpr"].consent_age == 14
    assert regimes["gdpr"].countries == BUILTIN_REGIMES["gdpr"].countries
    assert regimes["ccpa"] == BUILTIN_REGIMES["ccpa"]


def test_a_bad_regime_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        configured_regimes(PolicySettings(regimes={"gdpr": {"consent_age": "sixteen"}}))
