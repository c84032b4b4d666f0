"""`records.quick`: every class made quick is made as dataclasses' own constructor makes it."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import tactful.decide.decisions
import tactful.decide.engine
import tactful.decide.explain
import tactful.decide.logbook
import tactful.decide.walk
import tactful.policy.allowance  # noqa: F401  # each registers its quick classes
from tactful.records import ORIGINAL_INIT, quick

QUICK = sorted(ORIGINAL_INIT, key=lambda cls: cls.__qualname__)


def _arguments(cls: type, *, every: bool) -> tuple[list[object], dict[str, object]]:
    # A distinct object per field, so that a field set from the wrong argument shows.
    positional: list[object] = []
    keywords: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if has_default and not every:
            continue
        value = object()
        if (
            f.kw_only or (has_default and len(positional) % 2) or (keywords and not f.kw_only)
        ):  # some by keyword, some by place
            keywords[f.name] = value
        else:
            positional.append(value)
    return positional, keywords


def _both(cls: type, args: list[object], kwargs: dict[str, object]) -> tuple[Any, Any]:
    slow = object.__new__(cls)
    ORIGINAL_INIT[cls](slow, *args, **kwargs)
    return cls(*args, **kwargs), slow


def test_the_engines_values_are_made_quick() -> None:
    names = {cls.__qualname__ for cls in QUICK}
    assert {"Answer", "Passed", "Explanation", "Served", "Entry", "Allowance"} <= names


@pytest.mark.parametrize("cls", QUICK, ids=lambda cls: cls.__qualname__)
@pytest.mark.parametrize("every", [True, False], ids=["every field", "defaults left out"])
def test_a_quick_class_is_made_as_its_dataclass_constructor_makes_it(cls: type, every: bool) -> None:
    args, kwargs = _arguments(cls, every=every)
    made, slow = _both(cls, args, kwargs)
    assert list(vars(made)) == list(vars(slow)) == [f.name for f in dataclasses.fields(cls)]
    given = {*kwargs, *(f.name for f in dataclasses.fields(cls)[: len(args)])}
    assert all(vars(made)[name] is vars(slow)[name] for name in given)
    assert made == slow
    assert repr(made) == repr(slow)
    field = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, field, None)


@pytest.mark.parametrize("cls", QUICK, ids=lambda cls: cls.__qualname__)
def test_a_quick_class_refuses_the_arguments_its_constructor_refuses(cls: type) -> None:
    required = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    required = [f for f in required if f.default_factory is dataclasses.MISSING]
    if required:
        with pytest.raises(TypeError):
            cls()
    with pytest.raises(TypeError):
        cls(**{f.name: None for f in dataclasses.fields(cls)}, nowhere=None)


def test_default_factories_give_each_instance_its_own_value() -> None:
    @quick
    @dataclasses.dataclass(frozen=True)
    class Bag:
        name: str
        items: list[str] = dataclasses.field(default_factory=list)
        size: int = dataclasses.field(default=3, kw_only=True)

    one, two = Bag("a"), Bag("b", ["x"], size=4)
    assert one.items == []
    assert one.items is not Bag("a").items
    assert (two.items, two.size, one.size) == (["x"], 4, 3)
    with pytest.raises(TypeError):
        Bag("c", [], 5)  # type: ignore[misc]  # size is keyword-only


def test_only_plain_frozen_dataclasses_can_be_made_quick() -> None:
    @dataclasses.dataclass
    class Open:
        x: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    @dataclasses.dataclass(frozen=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True)
    class Derived:
        x: int
        y: int = dataclasses.field(init=False, default=0)

    for cls in (Open, Slotted, Checked, Derived):
        with pytest.raises(TypeError):
            quick(cls)
