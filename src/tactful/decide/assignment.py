"""Assignment: which variation of an experience a subject gets, deterministically, and how likely it was.

    the walk: an experience's audience matched ──▶ assign(allocation, unit, may_hash_anonymous_id=...)
        no hashing needed (one variation, no holdout, no namespace) ──────────────▶ Assigned (rule, 1.0)
        an anonymous id without the Allowance's permission to read it ────────────▶ NotCandidate
        namespace draw outside the experience's range ───────────▶ NotInNamespace (the walk goes on)
        holdout draw below the holdout share ────────────────────▶ HeldOut        (the walk goes on)
        split draw over the variations' weights ─────────────────▶ Assigned (rule or split)
    force(allocation, key) ─────────────────────────────────────▶ Assigned (forced: never learned from)
    Path: the experiences the walk passed ──▶ the exact propensity of the answer it logs

Each draw is a keyed BLAKE2b hash (RFC 7693) of the hashing unit (`user_id`, else `anonymous_id`)
read as a number in [0, 1). Keyed BLAKE2b is a pseudorandom function: for distinct units its outputs
cannot be told apart from independent uniform bits, and the top 53 bits of the digest divided by 2**53
are uniform on an exact grid of [0, 1) that floats represent without rounding (so never 1.0). The
hash is a fixed specification in `hashlib` on every platform and Python version, the unit is encoded
as UTF-8 and the digest read big-endian: nothing depends on the process, its `PYTHONHASHSEED` (as
Python's `hash()` would), the byte order or the interpreter, so every server process and every
release assigns a subject alike.

Three draws per subject are independent because their keys or domains differ: the holdout and the
split are keyed by the experience's seed under different BLAKE2b `person` strings (so being held out
says nothing about the variation one would have had), and the namespace draw is keyed by the
namespace's name alone, so that every experience of a namespace sees the same number and their
disjoint ranges keep a subject in at most one of them.

A draw is derived from an identifier with a seed that is not secret: with it, a guessable id can be
found from the draw. Draws stay out of `repr`, logs and answers; they are kept on results for tests.

Stickiness: an assignment depends only on the unit, the seed, and the variations' keys and weights
(laid out in key order, so reordering changes nothing). Content edits keep it. A change that would
move subjects between variations (`needs_new_seed`) or an explicit re-randomise takes `next_seed`, so
that nobody carries an earlier variation's exposure into another. Raising the holdout share only adds
held-out subjects (held out when the draw is below the share), and lowering it only releases some.

Propensity (DESIGN §3 invariant 8): the probability that the logging policy serves the answer for this
placement and context, over the draws. An `Assigned` carries its experience's share, weight ×
(1 − holdout) (1.0 for a rule without holdout); `Path` multiplies in what the walk passed: the holdout
share of each experience that held the subject out and, for namespaces, the chance of being in or out
of a range given the ranges already passed. Without namespaces a holdout's answer is the holdout share
times the next answer's propensity. Over every answer of a placement the propensities sum to 1. A
bandit's answer would be `Path.reach(allocation)` times the bandit's own probability.

    path = Path()
    for each experience whose audience matched, in walk order:
        Assigned ──────────────────▶ answer; logged propensity path.propensity(outcome, allocation)
        HeldOut | NotInNamespace ──▶ path = path.passing(allocation)
        NotCandidate ──────────────▶ skip (it never applies to this context)
    the placement's default ───────▶ logged propensity path.propensity()
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import accumulate, combinations
from typing import ClassVar

DEFAULT_HOLDOUT = 0.05
"""The holdout share of an experience with several variations that does not state one (as
Optimizely's campaign holdback); an experience with one variation holds out nobody unless it says so."""

_GRID = 2.0**53
# BLAKE2b's `person` is at most 16 bytes: one per kind of key and per draw.
_SEED_KEY = b"tactful.seed"
_NAMESPACE_KEY = b"tactful.ns"
_FIRST_SEED = b"tactful.seed0"
_NEXT_SEED = b"tactful.reseed"
_HOLDOUT = b"holdout"
_SPLIT = b"split"
_NAMESPACE = b"namespace"


class Strategy(StrEnum):
    """How an answer was chosen; the logged `strategy` of a decision."""

    RULE = "rule"
    SPLIT = "split"
    BANDIT = "bandit"
    HOLDOUT = "holdout"
    DEFAULT = "default"
    FORCED = "forced"


class AssignmentCode(StrEnum):
    ASSIGNED = "assigned"
    FORCED = "forced"
    """Chosen by hand (a preview or a test of a variation), not by the draws: logged, never learned from."""
    HELD_OUT = "held_out"
    NOT_IN_NAMESPACE = "not_in_namespace"
    """The subject's draw in the experience's namespace falls in another experience's range."""
    NO_UNIT = "no_unit"
    """Neither a user id nor an anonymous id to hash."""
    DEVICE_IDENTIFIER = "device_identifier"
    """Only the anonymous id could be hashed, and reading it needs a permission the Allowance does not
    give (ePrivacy Art. 5(3), DESIGN §1): the experience is not a candidate."""
    UNKNOWN_VARIATION = "unknown_variation"
    """Forced to a variation the experience does not have."""


class UnitKind(StrEnum):
    USER_ID = "user_id"
    ANONYMOUS_ID = "anonymous_id"


@dataclass(frozen=True, slots=True)
class Unit:
    """What is hashed for a subject: the user id when known, so that a person keeps a variation across
    devices once signed in, else the anonymous id."""

    kind: UnitKind
    value: str = field(repr=False)

    @staticmethod
    def of(*, user_id: str | None, anonymous_id: str | None) -> Unit | None:
        if user_id:
            return Unit(UnitKind.USER_ID, user_id)
        if anonymous_id:
            return Unit(UnitKind.ANONYMOUS_ID, anonymous_id)
        return None


@dataclass(frozen=True, slots=True)
class Variation:
    key: str
    weight: float
    """Relative: weights are normalised over the experience's variations."""


@dataclass(frozen=True, slots=True)
class Namespace:
    """An experience's share of a namespace: subjects whose namespace draw is in [start, end)."""

    name: str
    start: float
    end: float
    _hasher: hashlib.blake2b = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a namespace needs a name")
        if not (0.0 <= self.start < self.end <= 1.0):
            raise ValueError(f"namespace range [{self.start}, {self.end}) is not inside [0, 1)")
        object.__setattr__(self, "_hasher", _hasher(_derive_key(self.name, _NAMESPACE_KEY), _NAMESPACE))

    def __reduce__(self) -> tuple[type[Namespace], tuple[str, float, float]]:
        # A hash object cannot be pickled: a copy is built again from what defines it.
        return Namespace, (self.name, self.start, self.end)

    @property
    def width(self) -> float:
        return self.end - self.start

    def overlaps(self, other: Namespace) -> bool:
        return self.name == other.name and self.start < other.end and other.start < self.end


@dataclass(frozen=True, slots=True)
class Allocation:
    """What assignment reads of an experience. The management API validates experiences before they
    are built into one; an invalid allocation here is a bug, and raises `ValueError`."""

    key: str
    seed: str
    variations: tuple[Variation, ...]
    holdout: float | None = None
    """The share held out; None takes the default (`DEFAULT_HOLDOUT` with several variations, else 0)."""
    namespace: Namespace | None = None
    # Worked out once: an allocation is built when an experience is loaded, assigned on every decision.
    _layout: tuple[tuple[str, float], ...] = field(init=False, repr=False, compare=False)
    _bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _share: float = field(init=False, repr=False, compare=False)
    _needs_hash: bool = field(init=False, repr=False, compare=False)
    _holdout_hasher: hashlib.blake2b = field(init=False, repr=False, compare=False)
    _split_hasher: hashlib.blake2b = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.key or not self.seed:
            raise ValueError("an allocation needs an experience key and a seed")
        if self.holdout is not None and not (0.0 <= self.holdout <= 1.0):
            raise ValueError(f"holdout share {self.holdout} is not in [0, 1]")
        layout = split_layout(self.variations)
        share = self.holdout if self.holdout is not None else DEFAULT_HOLDOUT if len(layout) > 1 else 0.0
        key = _derive_key(self.seed, _SEED_KEY)
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "_bounds", tuple(bound for _, bound in layout))
        object.__setattr__(self, "_share", share)
        object.__setattr__(self, "_needs_hash", len(layout) > 1 or share > 0.0 or self.namespace is not None)
        object.__setattr__(self, "_holdout_hasher", _hasher(key, _HOLDOUT))
        object.__setattr__(self, "_split_hasher", _hasher(key, _SPLIT))

    def __reduce__(self) -> tuple[type[Allocation], tuple[object, ...]]:
        return Allocation, (self.key, self.seed, self.variations, self.holdout, self.namespace)

    @property
    def holdout_share(self) -> float:
        return self._share

    @property
    def strategy(self) -> Strategy:
        """`split` when the draw chooses among several variations that can be served, else `rule`."""
        return Strategy.SPLIT if len(self._layout) > 1 else Strategy.RULE

    @property
    def needs_hash(self) -> bool:
        """A rule without holdout or namespace gives everyone the same answer and reads no identifier."""
        return self._needs_hash


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assigned:
    experience: str
    variation: str
    strategy: Strategy
    propensity: float
    """This experience's share of the subjects that reach it inside its range: weight × (1 − holdout);
    `Path.propensity` gives the logged one."""
    draw: float | None = field(default=None, repr=False)
    """The split draw (None when no draw was made)."""

    @property
    def code(self) -> AssignmentCode:
        return AssignmentCode.FORCED if self.forced else AssignmentCode.ASSIGNED

    @property
    def forced(self) -> bool:
        return self.strategy is Strategy.FORCED

    @property
    def learnable(self) -> bool:
        """A forced answer says nothing about what the policy would do: it is never learned from."""
        return not self.forced


@dataclass(frozen=True, slots=True)
class HeldOut:
    """The subject is in the experience's holdout: the walk goes on below it, logged as a holdout."""

    experience: str
    share: float
    draw: float = field(repr=False)
    code: ClassVar[AssignmentCode] = AssignmentCode.HELD_OUT


@dataclass(frozen=True, slots=True)
class NotInNamespace:
    experience: str
    namespace: str
    draw: float = field(repr=False)
    code: ClassVar[AssignmentCode] = AssignmentCode.NOT_IN_NAMESPACE


@dataclass(frozen=True, slots=True)
class NotCandidate:
    experience: str
    code: AssignmentCode


Outcome = Assigned | HeldOut | NotInNamespace | NotCandidate


# -- assignment ------------------------------------------------------------------------------------


def assign(allocation: Allocation, unit: Unit | None, *, may_hash_anonymous_id: bool) -> Outcome:
    """Assign a subject whose audience matched. `may_hash_anonymous_id`: the Allowance lets a device
    identifier be read (the caller asks the gate); without it only a user id can be hashed."""
    if not allocation._needs_hash:
        return Assigned(allocation.key, allocation._layout[0][0], Strategy.RULE, 1.0)
    if unit is None:
        return NotCandidate(allocation.key, AssignmentCode.NO_UNIT)
    if unit.kind is UnitKind.ANONYMOUS_ID and not may_hash_anonymous_id:
        return NotCandidate(allocation.key, AssignmentCode.DEVICE_IDENTIFIER)
    subject = _utf8(unit.value)
    namespace = allocation.namespace
    if namespace is not None:
        at = _draw(subject, namespace._hasher)
        if not (namespace.start <= at < namespace.end):
            return NotInNamespace(allocation.key, namespace.name, at)
    holdout = allocation._share
    if holdout > 0.0:
        at = _draw(subject, allocation._holdout_hasher)
        if at < holdout:
            return HeldOut(allocation.key, holdout, at)
    layout = allocation._layout
    if len(layout) == 1:
        return Assigned(allocation.key, layout[0][0], Strategy.RULE, 1.0 - holdout)
    at = _draw(subject, allocation._split_hasher)
    bounds = allocation._bounds
    index = bisect_right(bounds, at)
    width = bounds[index] - (bounds[index - 1] if index else 0.0)
    return Assigned(allocation.key, layout[index][0], Strategy.SPLIT, width * (1.0 - holdout), at)


def force(allocation: Allocation, variation: str) -> Assigned | NotCandidate:
    """A variation chosen by hand (an admin preview, a test): no draw, no holdout, no namespace."""
    if all(v.key != variation for v in allocation.variations):
        return NotCandidate(allocation.key, AssignmentCode.UNKNOWN_VARIATION)
    return Assigned(allocation.key, variation, Strategy.FORCED, 1.0)


def split_layout(variations: Sequence[Variation]) -> tuple[tuple[str, float], ...]:
    """The variations that can be served, in key order, each with the upper end of its share of [0, 1).
    Two layouts that are equal assign every unit alike under one seed."""
    keys = [v.key for v in variations]
    if not keys or any(not k for k in keys) or len(set(keys)) != len(keys):
        raise ValueError("an experience needs variations with distinct, non-empty keys")
    if any(not math.isfinite(v.weight) or v.weight < 0 for v in variations):
        raise ValueError("variation weights are finite and not negative")
    served = sorted((v for v in variations if v.weight > 0), key=lambda v: v.key)
    total = math.fsum(v.weight for v in served)
    if not served or not math.isfinite(total):
        raise ValueError("at least one variation needs a positive weight")
    bounds = [min(1.0, b / total) for b in accumulate(v.weight for v in served)]
    # Rounding may leave the last bound a hair under 1: the last variation takes the rest of [0, 1).
    bounds[-1] = 1.0
    return tuple((v.key, b) for v, b in zip(served, bounds, strict=True))


def _utf8(text: str) -> bytes:
    # JSON text may carry a lone surrogate ("\ud800"): such an id is still an id, and hashes, not raises.
    return text.encode("utf-8", "surrogatepass")


def _derive_key(material: str, person: bytes) -> bytes:
    return hashlib.blake2b(_utf8(material), digest_size=32, person=person).digest()


def _hasher(key: bytes, person: bytes) -> hashlib.blake2b:
    """A keyed hash with nothing hashed yet: copying it skips the key's block on every draw."""
    return hashlib.blake2b(digest_size=8, key=key, person=person)


def _draw(subject: bytes, hasher: hashlib.blake2b) -> float:
    """A uniform number in [0, 1): the digest's top 53 bits over 2**53 (see the module's docstring)."""
    running = hasher.copy()
    running.update(subject)
    return (int.from_bytes(running.digest(), "big") >> 11) / _GRID


# -- seeds -----------------------------------------------------------------------------------------


def initial_seed(experience_id: str) -> str:
    """An experience's first seed, from its (random, never reused) id: two experiences never share one."""
    return hashlib.blake2b(_utf8(experience_id), digest_size=16, person=_FIRST_SEED).hexdigest()


def next_seed(seed: str) -> str:
    """The seed after a re-randomise or a change of the split. Chained from the previous one, so each
    change gives a seed never used before by this experience, even when the split returns to an earlier
    one."""
    return hashlib.blake2b(_utf8(seed), digest_size=16, person=_NEXT_SEED).hexdigest()


def needs_new_seed(before: Sequence[Variation], after: Sequence[Variation]) -> bool:
    """Whether a change of variations would move some subjects to another variation under the same
    seed: then it takes `next_seed`. Content, order, a variation added at weight 0 and weights scaled
    alike move nobody and keep the seed."""
    return split_layout(before) != split_layout(after)


# -- namespaces ------------------------------------------------------------------------------------


def namespace_overlaps(allocations: Iterable[Allocation]) -> tuple[tuple[str, str], ...]:
    """Pairs of experiences whose ranges of one namespace overlap: a subject could be in both, so they
    cannot be live together (the management API refuses to publish such a pair)."""
    placed = [a for a in allocations if a.namespace is not None]
    return tuple(
        (a.key, b.key)
        for a, b in combinations(placed, 2)
        if a.namespace is not None and b.namespace is not None and a.namespace.overlaps(b.namespace)
    )


# -- propensity ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Path:
    """The experiences a walk down one placement passed (held out, or outside their namespace range),
    in order; it turns an answer's own share into its logged propensity. Experiences that were not
    candidates for this context are not part of it: they never apply to it, by chance or otherwise.

    The holdout, split and namespace draws are independent (separate keys), and the ranges of one
    namespace are disjoint, so the chance of reaching an experience is a product over namespaces (an
    experience without one counts as a namespace of its own, the whole of [0, 1)). For a namespace
    whose passed experiences cover a share c_k each with holdout h_k: reaching a later experience of
    the same namespace means the draw was in none of those ranges and is in its own, with chance its
    width; reaching anything else means each was missed or held out, with chance 1 − Σ c_k (1 − h_k).
    """

    passed: tuple[Allocation, ...] = ()

    def passing(self, allocation: Allocation) -> Path:
        return Path((*self.passed, allocation))

    def reach(self, allocation: Allocation | None = None) -> float:
        """The chance of getting past every passed experience and, given one, into its range."""
        served: dict[str, float] = {}
        chance = 1.0
        for a in self.passed:
            if a.namespace is None:
                chance *= a.holdout_share
            else:
                share = a.namespace.width * (1.0 - a.holdout_share)
                served[a.namespace.name] = served.get(a.namespace.name, 0.0) + share
        own = allocation.namespace if allocation is not None else None
        for name, share in served.items():
            if own is None or name != own.name:
                chance *= max(0.0, 1.0 - share)
        return chance * own.width if own is not None else chance

    def propensity(self, answer: Assigned | None = None, allocation: Allocation | None = None) -> float:
        """The logged propensity of `answer` from `allocation`, or, with neither, of the placement's
        default (its own propensity 1.0) reached after the passed experiences. A forced answer is 1.0."""
        if answer is None:
            return self.reach()
        if answer.forced:
            return 1.0
        if allocation is None or allocation.key != answer.experience:
            raise ValueError("an assigned answer's propensity needs the allocation it came from")
        return self.reach(allocation) * answer.propensity
