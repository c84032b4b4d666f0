"""Frozen dataclasses made in one step: the engine's values, built many times per decision.

A frozen dataclass's `__init__` sets each field with its own `object.__setattr__` call (frozen
classes refuse `self.x = x`): about 0.15 µs a field, 2 µs for an Answer's fifteen, paid for every
placement of every decision. `quick` gives such a class an `__init__` generated, as dataclasses
generates its own, from the class's fields: the same parameters in the same order, the same
defaults and default factories, keyword-only fields after the `*`; its body sets the instance's
dictionary in one step. The class stays what it was in every other way (frozen, compared, hashed
and printed by its fields). `tests/foundation/test_records.py` holds every class made quick to
the constructor dataclasses made for it, which `ORIGINAL_INIT` keeps.

Classes with `__slots__`, `__post_init__` or fields left out of `__init__` are refused: their
construction is not a plain assignment of the arguments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

ORIGINAL_INIT: dict[type, Callable[..., None]] = {}
"""Every class made quick, with the `__init__` dataclasses made for it."""

_MISSING = object()


def quick(cls: type[T]) -> type[T]:
    """`cls`, a frozen dataclass, with an `__init__` that sets its fields in one step."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen:
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if "__slots__" in cls.__dict__ or hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has slots or a __post_init__: its construction is not plain")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # a dataclass, checked above
    if any(not f.init for f in fields):
        raise TypeError(f"{cls.__name__} has fields left out of __init__")
    names: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": _MISSING}
    positional: list[str] = []
    keywords: list[str] = []
    values: list[str] = []
    for f in fields:
        if f.default is not dataclasses.MISSING:
            names[f"_default_{f.name}"] = f.default
            param = f"{f.name}=_default_{f.name}"
            value = f.name
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory_{f.name}"] = f.default_factory
            param = f"{f.name}=_MISSING"
            value = f"_factory_{f.name}() if {f.name} is _MISSING else {f.name}"
        else:
            param = value = f.name
        (keywords if f.kw_only else positional).append(param)
        values.append(f"{f.name!r}: {value}")
    signature = ", ".join(["self", *positional, *(["*", *keywords] if keywords else [])])
    source = f"def __init__({signature}):\n    _set(self, '__dict__', {{{', '.join(values)}}})\n"
    exec(source, names)  # noqa: S102  # generated from the class's own fields, as dataclasses does
    made = names["__init__"]
    made.__qualname__ = f"{cls.__qualname__}.__init__"
    made.__doc__ = cls.__init__.__doc__
    ORIGINAL_INIT[cls] = cls.__init__  # kept for the tests
    cls.__init__ = made  # type: ignore[method-assign]  # the same signature, made in one step
    return cls
