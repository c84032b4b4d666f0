"""The deployment's regimes: the built-in `gdpr` and `ccpa` with the configuration's overrides, and its
custom regimes. Built once per process (a bad regime refuses to start), then passed to the gate."""

from __future__ import annotations

from dataclasses import replace

from tactful.config import PolicySettings
from tactful.policy import Regime, regime_from_config
from tactful.policy.regimes import BUILTIN_REGIMES

_WHERE = ("countries", "regions", "establishments")


def configured_regimes(policy: PolicySettings) -> tuple[Regime, ...]:
    regimes = dict(BUILTIN_REGIMES)
    for name, config in policy.regimes.items():
        builtin = BUILTIN_REGIMES.get(name)
        if builtin is not None and "extends" not in config:
            regime = regime_from_config({"extends": name, **config, "name": name})
            if not any(key in config for key in _WHERE):
                # An override of a built-in keeps where it applies unless it says otherwise.
                regime = replace(
                    regime,
                    countries=builtin.countries,
                    regions=builtin.regions,
                    establishments=builtin.establishments,
                )
        else:
            regime = regime_from_config({**config, "name": name})
        regimes[name] = regime
    return tuple(regimes.values())
