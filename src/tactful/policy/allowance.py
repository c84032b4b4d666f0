"""The gate's answer (`Allowance`) and the only object decisions and models ever see (`SubjectView`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from tactful.errors import TactfulError
from tactful.policy.verdicts import Code, Reason, Verdict
from tactful.records import quick
from tactful.types import Level, Purpose


class AtomNotAllowed(TactfulError):
    """Code asked a SubjectView for an atom outside its Allowance: a bug in the caller, never a
    result to show (the atom's value is not in the view to begin with)."""

    code = "atom_not_allowed"

    def __init__(self, atom: str, reason: Reason) -> None:
        super().__init__(f"atom {atom!r} is not in this view's allowance: {reason}")
        self.atom = atom
        self.reason = reason


K = TypeVar("K")
V = TypeVar("V")


class Lazy(Mapping[K, V]):
    """A read-only mapping worked out on first use: its keys when first asked for, each value
    when first asked for, each once. Subclasses say how (`_work_keys`, `_work`), and start with
    `_keys` and `_done` set to None.

    Most decisions never ask why an atom was refused or which atoms serve analytics, so the gate
    hands those over as a recipe instead of paying for them on every call. Equal to any mapping
    with the same items, like a dict.
    """

    __slots__ = ("_done", "_keys")
    _keys: Collection[K] | None
    _done: dict[K, V] | None

    def _work_keys(self) -> Collection[K]:
        raise NotImplementedError

    def _work(self, key: K) -> V:
        raise NotImplementedError

    def _known(self) -> Collection[K]:
        keys = self._keys
        if keys is None:
            keys = self._keys = self._work_keys()
        return keys

    def __getitem__(self, key: K) -> V:
        done = self._done
        if done is None:
            done = self._done = {}
        elif key in done:
            return done[key]
        if key not in self._known():
            raise KeyError(key)
        value = done[key] = self._work(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._known()

    def __iter__(self) -> Iterator[K]:
        return iter(self._known())

    def __len__(self) -> int:
        return len(self._known())

    def __repr__(self) -> str:
        return repr(dict(self.items()))


class Deferred(Lazy[K, V]):
    """A `Lazy` mapping from two functions: one gives the keys, the other a key's value."""

    __slots__ = ("_make_keys", "_value")

    def __init__(self, keys: Callable[[], Collection[K]], value: Callable[[K], V]) -> None:
        self._make_keys, self._value = keys, value
        self._keys = self._done = None

    def _work_keys(self) -> Collection[K]:
        return self._make_keys()

    def _work(self, key: K) -> V:
        return self._value(key)


_NOT_SIGNIFICANT = Verdict(False, Code.EXPLICIT_MISSING, (("category", "significant_decisions"),))
_NOT_LEARNABLE = Reason(Code.NOT_LEARNABLE)


@quick
@dataclass(frozen=True)
class Allowance:
    """What may be read about one subject at one moment, and why nothing more.

    `decide_atoms` may be read to decide; `learn_atoms` (a subset) may be learned from. Atoms in
    `request_only` may be read from this request's context only, never from the stored profile.
    Every declared atom outside `decide_atoms` has a reason in `refusals`; every level above the
    ceiling has one in `level_reasons`. Reasons are codes with parameters (`verdicts.py`); their
    words are made at the edge (`wording.py`).
    """

    ceiling: Level
    decide_atoms: frozenset[str]
    learn_atoms: frozenset[str]
    purposes: Mapping[Purpose, Verdict]
    refusals: Mapping[str, Reason]
    level_reasons: Mapping[Level, Reason]
    may_learn: bool
    learn_ceiling: Level = Level.ALL
    request_only: frozenset[str] = frozenset()
    purpose_atoms: Mapping[Purpose, frozenset[str]] = field(default_factory=dict)
    """For each purpose that holds, the atoms that may be processed for it."""
    significant_decisions: Verdict = _NOT_SIGNIFICANT
    regimes: tuple[str, ...] = ()
    minor: bool = False
    learn_reason: Reason | None = None
    """Why this subject may not be learned from, when `may_learn` is False."""
    device_identifiers: bool = False
    """Whether a purpose this Allowance serves lets a device identifier be read (ePrivacy Art. 5(3)
    where a regime asks consent for it): an anonymous id may then be hashed for a split."""

    @property
    def level(self) -> Level:
        return self.ceiling

    def allows(self, atom: str) -> bool:
        return atom in self.decide_atoms

    def verdict(self, purpose: Purpose) -> Verdict:
        return self.purposes[purpose]

    def atoms_for(self, purpose: Purpose) -> frozenset[str]:
        return self.purpose_atoms.get(purpose, frozenset())

    def reason_for(self, atom: str) -> Reason | None:
        """Why `atom` may not be read (None when it may)."""
        if atom in self.decide_atoms:
            return None
        return self.refusals.get(atom) or Reason.of(Code.NOT_DECLARED, atom=atom)


class SubjectView(Mapping[str, object]):
    """A read-only mapping of the atoms an Allowance permits, and nothing else.

    Reading an atom outside the Allowance raises `AtomNotAllowed` (a permitted atom with no value
    raises `KeyError`, as a mapping does); `atoms_read` records what was read, for the decision log.
    """

    __slots__ = ("_allowance", "_allowed", "_names", "_read", "_reasons", "_values")
    _allowance: Allowance
    _allowed: frozenset[str]
    _read: set[str]
    _names: frozenset[str]
    _reasons: Mapping[str, Reason]
    _values: Mapping[str, object]

    def __init__(self, allowance: Allowance, values: Mapping[str, object], allowed: frozenset[str]) -> None:
        set_ = object.__setattr__
        set_(self, "_allowance", allowance)
        set_(self, "_allowed", allowed)
        # The names now, the values when read: a value may be sealed, and is opened only if used.
        set_(self, "_values", values)
        set_(self, "_names", frozenset(k for k in values if k in allowed))
        set_(self, "_read", set())
        set_(self, "_reasons", allowance.refusals)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a SubjectView is read-only")

    def __getitem__(self, atom: str) -> object:
        if atom not in self._allowed:
            reason = self._reasons.get(atom) or _NOT_LEARNABLE
            raise AtomNotAllowed(atom, reason)
        if atom not in self._names:
            raise KeyError(atom)
        value = self._values[atom]
        self._read.add(atom)
        return value

    def get(self, atom: str, default: Any = None) -> Any:
        try:
            return self[atom]
        except KeyError:
            return default

    def __contains__(self, atom: object) -> bool:
        return atom in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        # Names only: a view's values are personal data and must not reach logs through a repr.
        return f"SubjectView(level={self.level}, atoms={sorted(self._names)})"

    @property
    def level(self) -> Level:
        return self._allowance.ceiling

    @property
    def allowance(self) -> Allowance:
        return self._allowance

    @property
    def allowed_atoms(self) -> frozenset[str]:
        return self._allowed

    @property
    def atoms_read(self) -> frozenset[str]:
        return frozenset(self._read)
